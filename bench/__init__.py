"""Benchmarks against real peers. Each module is runnable as ``python -m bench.<name>`` and
writes JSON to bench/results/<name>.json; ``python -m bench`` runs them all."""
