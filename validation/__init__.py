"""Validation: statistics, SciUnit/NetworkUnit tests, scores and report.

Modules
-------
settings
    ``defaults.toml`` and overrides.
statistics
    Per-population statistics on flat ``(ids, times)`` arrays (numpy/scipy).
elephant_route
    The same statistics through neo + Elephant (cross-checks, benchmark, fallback).
scores
    Distances between runs and their expression relative to seed-to-seed variability.
pipeline
    ``validate(reference_dirs, candidate_dirs, out_dir, settings)``: tables and figures.
sciunit_tests
    ``RunModel`` (SciUnit model of a run directory) and one SciUnit test per statistic.
networkunit_compat
    All compatibility fixes for NetworkUnit 0.2.2 / SciUnit 0.2.8.
"""
