"""Changing the firewall: policy files (compile, diff), apply (atomic, lockout-checked,
journalled), quick one-rule changes and expiring rules."""
