"""The connectivity doctor: walk from a symptom to the broken rung and the next command."""
