"""Validation: statistics, SciUnit/NetworkUnit tests, scores and report."""
