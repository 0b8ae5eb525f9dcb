"""Write a conductance-based model's weight map into the catalogue (issue 15).

``python -m cortexzoo.experiments.conductance_table MODEL [--rule R] [--voltage measured|theory] [--write]``
prints ``weights.conductance_per_reference_psc`` (nS per reference-PSC pA, per target population and
presynaptic type) computed by :func:`cortexzoo.models.conductance.conductance_map` for PD14's
populations, and with ``--write`` stores it in ``models_nestml/catalogue.toml``. It lives here, not in
``cortexzoo.models``, because the populations come from the network's parameters (the models stage
does not import the network).
"""

from __future__ import annotations

import argparse
import sys

from cortexzoo.errors import exit_code_of
from cortexzoo.models.conductance import VOLTAGES, conductance_map, lif_depolarisation_mV


def main(argv=None) -> int:
    """``python -m cortexzoo.experiments.conductance_table MODEL [--rule R] [--voltage V] [--write]``."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", help="catalogue name of a conductance-based model")
    p.add_argument("--rule", help="calibration rule whose cells are used (default: the model's default rule)")
    p.add_argument("--voltage", choices=VOLTAGES, default="measured", help="working-point voltage (module doc)")
    p.add_argument("--write", action="store_true", help="write the table into the catalogue under that rule")
    return exit_code_of(write_table, p.parse_args(argv))


def write_table(args) -> None:
    """Compute (and with ``--write`` store) the map of ``args.model``; print it."""
    from cortexzoo.models.catalogue import catalogue_path, get_model
    from cortexzoo.models.catalogue_edit import update_catalogue_text, write_catalogue_atomically
    from cortexzoo.network.params import load_pd14

    spec = get_model(args.model, args.rule)
    pd14 = load_pd14()
    table = conductance_map(spec, dict(zip(pd14["populations"], pd14["cell_types"])),
                            lif_depolarisation_mV(args.voltage))
    if args.write:
        prefix = f"models.{args.model}" + (f".rules.{spec.rule}" if args.rule else "")
        path = catalogue_path()
        text = update_catalogue_text(path.read_text(), {f"{prefix}.weights.conductance_per_reference_psc": table})
        write_catalogue_atomically(path, text)
    for which, factors in table.items():
        print(which, " ".join(f"{pop}={f:.6g}" for pop, f in factors.items()), "(nS per reference pA)")


if __name__ == "__main__":
    sys.exit(main())
