"""What a ruleset does to packets: space (packet sets), unfold (rules and chains as packet
spaces), trace (one packet through the hooks) and routing (the host's local addresses)."""
