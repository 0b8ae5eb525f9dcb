"""cortexzoo: how much does the single-neuron model matter for a cortical network?

The stages live in sub-packages, one home folder each:

* :mod:`cortexzoo.models` (``models_nestml/``): NESTML sources, model catalogue, build service
* :mod:`cortexzoo.network` (``network/``): the PD14 microcircuit core
* :mod:`cortexzoo.experiments` (``experiments/``): configs, CLI, workflows
* :mod:`cortexzoo.validation` (``validation/``): metrics, SciUnit tests, scores, report

For notebooks, :mod:`cortexzoo.api`: ``cortexzoo.open_experiment(path)`` gives an
:class:`~cortexzoo.api.Experiment` view of a ``cortexzoo compare`` folder, and
``cortexzoo.simulate(config, out_dir)`` runs one simulation.
"""

__version__ = "0.1.0"

__all__ = ["Experiment", "open_experiment", "simulate"]


def __getattr__(name):
    # Imported on first use: `import cortexzoo` (every CLI call, every run job) stays free of
    # pandas, matplotlib and NEST.
    if name in __all__:
        from cortexzoo import api

        return getattr(api, name)
    raise AttributeError(f"module 'cortexzoo' has no attribute {name!r}")
