"""Transactions over files and commands: atomic writes, before-images, undo, audit log."""
