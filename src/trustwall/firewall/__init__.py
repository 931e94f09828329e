"""The "letting in" side: the iptables model, its parser and renderers, and the live reader.

``model`` holds the values; ``parse`` builds them from iptables-save text or an iptables
command line; ``render`` prints iptables-save text, the ``iptables -L`` table and commands;
``live`` reads the running system.
"""
