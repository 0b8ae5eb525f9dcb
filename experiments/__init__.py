"""Experiment configs, the cortexzoo command line and workflows."""
