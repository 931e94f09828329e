"""Thin command layer: parse arguments, call one API function, render its typed result."""
