"""The "letting in" side: read a firewall, say what it does to packets, change it safely.

The pipeline::

    iptables-save text / an iptables command line / a policy file
        │  iptables.parse  (tokens; each extension's options, canonical form, defaults and
        │                   checks come from iptables.extensions, the one registry)
        ▼
    iptables.model.Ruleset ──► iptables.render (save text, ``-L`` table, commands)
        │  iptables.compile (Ruleset.to_ir, cached per ruleset): tables → base chains at
        │  their priorities; -p -s -d -i -o -f and each match's registry ``meaning`` →
        │  conditions; the target's ``effect``/``rewrite`` → an action; a link to the rule
        ▼
    ir.Ruleset: per family and hook, base chains by priority; rules = ir.Condition over
        │       packet fields (ports, flags, states, ICMP, marks, …; Opaque) + ir.Action
        │       (other frontends, e.g. native nftables, compile to the same)
        ├─► semantics.trace    one packet through every base chain of each hook it meets
        ├─► semantics.unfold   rules as packet spaces (semantics.space) per base chain
        │        ├─► analysis.lint  shadowed, redundant, unreachable, bypassed rules
        │        │                  (+ iptables.checks: what iptables itself refuses)
        │        └─► analysis.plan  where a new rule goes, what it changes; diff of rulesets
        │                           (its iptables words: iptables.commands)
        └─► change.policy / change.quick  policy files and one-rule changes
                 └─► change.apply  atomic restore, lockout check, confirm or roll back,
                                   journal (change.undo says when undo is safe)

trace, unfold, lint, plan and diff read only the IR: each reads a condition through one
table keyed by its field (``trace.index.FIELDS``, ``unfold.FIELDS``); a field either table
lacks is treated as opaque (both outcomes, "may match" only), never an error.
``protocols`` holds the protocol, service and ICMP names every layer shares;
``iptables.live`` only reads the running system (iptables-save); ``iptables.fields`` says
what a name, interface or comment may hold before it reaches the kernel.
"""
