"""Sampling: the batched KV-cache engine (engine.py) and beam search (beam.py)."""
