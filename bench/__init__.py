"""Benchmarks: ``make bench`` runs them, prints their figures and merges them into
``bench/results.json`` (one flat JSON object; each benchmark owns its keys)."""
