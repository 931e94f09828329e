"""The "letting in" side: read a firewall, say what it does to packets, change it safely.

The pipeline::

    iptables-save text / an iptables command line / a policy file
        │  iptables.parse  (tokens; each extension's options, canonical form, defaults and
        │                   checks come from iptables.extensions, the one registry)
        ▼
    iptables.model.Ruleset ──► iptables.render (save text, ``-L`` table, commands)
        │  iptables.extensions.conditions (each match's meaning, declared with its row)
        ▼
    ir.Condition over packet fields (ports, flags, states, ICMP, ranges, marks, …; Opaque)
        │
        ├─► semantics.trace    one packet through the hooks, tables and chains
        ├─► semantics.unfold   rules as packet spaces (semantics.space) per hook
        │        ├─► analysis.lint  shadowed, redundant, unreachable, bypassed rules
        │        └─► analysis.plan  where a new rule goes, what it changes; diff of rulesets
        └─► change.policy / change.quick  policy files and one-rule changes
                 └─► change.apply  atomic restore, lockout check, confirm or roll back,
                                   journal (change.undo says when undo is safe)

``protocols`` holds the protocol, service and ICMP names every layer shares;
``iptables.live`` only reads the running system (iptables-save); ``iptables.fields`` says
what a name, interface or comment may hold before it reaches the kernel.
"""
