"""cortexzoo: how much does the single-neuron model matter for a cortical network?

The stages live in sub-packages, one home folder each:

* :mod:`cortexzoo.models` (``models_nestml/``): NESTML sources, model catalogue, build service
* :mod:`cortexzoo.network` (``network/``): the PD14 microcircuit core
* :mod:`cortexzoo.experiments` (``experiments/``): configs, CLI, workflows
* :mod:`cortexzoo.validation` (``validation/``): metrics, SciUnit tests, scores, report
"""

__version__ = "0.1.0"
