"""Tables of ``cortexzoo calibrate`` (``models_nestml/calibration/``).

Every table has one row per (model, cell type[, population]); a run that
calibrates only some models replaces their rows and keeps the others, so
``cortexzoo calibrate --models X`` never drops the rest of the zoo.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

#: Columns the issue asks for first, then the acceptance details.
OPERATING_POINT_COLUMNS = ["model", "cell_type", "population", "mu_mV", "sigma_mV", "rate_lif_Hz", "rate_model_Hz",
                           "residual_Hz", "relative_residual", "tolerance_Hz", "within_tolerance"]


def merge_rows(path: Path, rows: pd.DataFrame) -> pd.DataFrame:
    """Write ``rows`` to ``path``, keeping the rows of models that ``rows`` does not contain.

    Parameters
    ----------
    path : pathlib.Path
        CSV file with a ``model`` column (created if missing).
    rows : pandas.DataFrame
        New rows, with a ``model`` column.

    Returns
    -------
    pandas.DataFrame
        What was written.
    """
    path = Path(path)
    if path.is_file():
        old = pd.read_csv(path)
        if "model" in old:  # columns may differ by model (gain_<param>): the union is kept
            rows = pd.concat([old[~old.model.isin(rows.model)], rows], ignore_index=True)
    rows.to_csv(path, index=False, float_format="%.6g")
    return rows


def write_cells(path: Path, results: dict) -> pd.DataFrame:
    """Per model and cell type: input scale, bias, PSP peak and integral, R_in, tau_m,eff, rheobase.

    Parameters
    ----------
    path : pathlib.Path
    results : dict
        ``run_calibration`` results of the ``published`` or ``operating_point`` rule.

    Returns
    -------
    pandas.DataFrame
    """
    rows = []
    for model, entry in results.items():
        for cell_type, fit in entry["types"].items():
            row = {"model": model, "cell_type": cell_type, "input_scale": fit["scale"],
                   "bias_pA": fit.get("bias_pA", 0.0), "bias_mV": fit["fit"].bias_mV if "fit" in fit else 0.0,
                   **{f"gain_{k}": v for k, v in fit.get("gain", {}).items()}, **fit["report"]}
            rows.append(row)
    return merge_rows(path, pd.DataFrame(rows))


def write_operating_points(path: Path, results: dict) -> pd.DataFrame:
    """``operating_points.csv``: model vs LIF rate at each working point of each cell type.

    Parameters
    ----------
    path : pathlib.Path
    results : dict
        ``run_calibration`` results of the ``operating_point`` rule.

    Returns
    -------
    pandas.DataFrame
    """
    frames = []
    for model, entry in results.items():
        for cell_type, fit in entry["types"].items():
            frames.append(fit["check"].assign(model=model, cell_type=cell_type))
    return merge_rows(path, pd.concat(frames, ignore_index=True)[OPERATING_POINT_COLUMNS])
