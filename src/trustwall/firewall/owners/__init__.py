"""Who owns the firewall, and how to change it through them.

A host's rules belong to an **owner**: firewalld, ufw, plain nftables (nftables.service and
/etc/nftables.conf), iptables with boot files (iptables-persistent / iptables-services), or
nobody in particular (rules only in the kernel). Docker, kube-proxy, libvirt and fail2ban own
chains of their own that trustwall reads but never writes.

``detect`` says who owns each table and chain; each writable owner's module turns a
:class:`Request` into an :class:`OwnerPlan`: the owner's own commands (``firewall-cmd``,
``ufw``, ``nft`` + its file, ``iptables`` + its boot file), whether the change persists, and
its effect on packets; ``--apply`` runs them through the journal so that ``trustwall undo``
restores runtime and permanent state exactly.
"""
