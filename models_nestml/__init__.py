"""NESTML neuron models, the model catalogue and the NESTML -> NEST build service."""

from cortexzoo.models.build import build_module
from cortexzoo.models.catalogue import ModelSpec, get_model, load_catalogue
from cortexzoo.models.kernel import import_nest, ready_kernel

__all__ = ["ModelSpec", "build_module", "get_model", "import_nest", "load_catalogue", "ready_kernel"]
