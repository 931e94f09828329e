"""The iptables frontend: model (values), extensions (the one registry of match and target
extensions), parse (iptables-save text and command lines), render (save text, ``-L``,
commands) and live (read-only: iptables-save of the running system)."""
