"""Command line of the working-point membrane table (models_nestml/membrane.py, issue 12).

Usage::

    python -m cortexzoo.experiments.membrane_table [--rules R ...] [--models M ...] [--out CSV]

Here rather than in ``models_nestml``: the working points come from the network's theory, and the
model layer does not import the network.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd


def main(argv=None) -> int:
    """Measure every model's membrane at the working points under each rule and write the CSV."""
    from cortexzoo.models.membrane import working_point_membrane
    from cortexzoo.network.theory import working_point_inputs_by_type

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", nargs="+", default=["operating_point"])
    parser.add_argument("--models", nargs="*")
    parser.add_argument("--out", type=Path, default=Path("models_nestml/calibration/working_point_membrane.csv"))
    args = parser.parse_args(argv)
    by_type = working_point_inputs_by_type()
    tables = [working_point_membrane(by_type, rule, args.models, progress=print) for rule in args.rules]
    # the LIF rows are the same reference for every rule (same seed): keep them once
    table = pd.concat(tables, ignore_index=True).drop_duplicates(["model", "rule", "population"])
    table.to_csv(args.out, index=False, float_format="%.4g")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
