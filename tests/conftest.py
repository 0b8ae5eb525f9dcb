"""Shared fixtures: the real NEST kernel with the real NESTML module."""

import pytest

from cortexzoo.models import build_module, ready_kernel


@pytest.fixture(scope="session")
def nestml_module():
    """Build (or fetch from the cache) the real NESTML module once per test session."""
    return build_module()


@pytest.fixture
def nest_kernel(nestml_module):
    """A freshly reset NEST kernel, one thread, 0.1 ms, with the NESTML module installed."""
    return ready_kernel(threads=1, resolution_ms=0.1, seed=12345)
