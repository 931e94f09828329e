"""Answers about a ruleset: lint (shadowed, redundant, unreachable rules), plan (where a new
rule goes and what it changes) and diff."""
