"""The report's decision tables as rows for the HTML template, every cell marked with its decision.

The template (``templates/report.html.j2``) colours a cell by its class, ``differs``,
``consistent`` or ``undefined``, and the text says the same without colour: the count
of differing populations, ``n/a``, or the decision itself. Rendering the rows in the
template (instead of inserting pandas' HTML) lets Jinja escape every name.
"""

from __future__ import annotations

import math

import pandas as pd

DECISION_CLASSES = ("differs", "consistent", "undefined")


def decision_class(decision: str) -> str:
    """The class of one decision: ``"undefined: <reason>"`` is ``undefined``.

    Parameters
    ----------
    decision : str
        A ``decision`` value of ``scores.csv``.

    Returns
    -------
    str
        One of :data:`DECISION_CLASSES`.
    """
    return "undefined" if str(decision).startswith("undefined") else str(decision)


def _summary_class(decisions: pd.Series) -> str:
    """A group of decisions: differs if any differs, undefined if none is defined, else consistent."""
    classes = set(decisions.map(decision_class))
    if "differs" in classes:
        return "differs"
    return "undefined" if classes <= {"undefined"} else "consistent"


def score_table_rows(scores: pd.DataFrame, table: pd.DataFrame) -> dict:
    """The variants x measures table with the class of each cell.

    Parameters
    ----------
    scores : pandas.DataFrame
        Decision rows (``scores.csv``).
    table : pandas.DataFrame
        Its cell texts, :func:`cortexzoo.validation.report.score_table` (measures, then ``differs``).

    Returns
    -------
    dict
        ``{"columns": [...], "rows": [{"model": str, "cells": [{"text": str, "decision": str}, ...]}]}``;
        a cell is ``differs`` when any of its populations differs, ``undefined``
        when none is decided, else ``consistent``; the ``differs`` column takes
        the class of all the variant's decisions.
    """
    classes = scores.groupby(["model", "measure"], sort=False)["decision"].apply(_summary_class)
    overall = scores.groupby("model", sort=False)["decision"].apply(_summary_class)
    rows = []
    for model, texts in table.iterrows():
        # A measure the variant has no row of at all (NaN after the reindex) is undefined as well.
        cells = [{"text": texts[m], "decision": classes.get((model, m), "undefined")} if isinstance(texts[m], str)
                 else {"text": "n/a", "decision": "undefined"} for m in table.columns[:-1]]
        cells.append({"text": texts[table.columns[-1]], "decision": overall[model]})
        rows.append({"model": model, "cells": cells})
    return {"columns": list(table.columns), "rows": rows}


def _cell(value) -> str:
    if isinstance(value, float):
        return "NaN" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def all_decision_rows(scores: pd.DataFrame) -> dict:
    """Every decision row of ``scores.csv``, formatted, with its class.

    Parameters
    ----------
    scores : pandas.DataFrame

    Returns
    -------
    dict
        ``{"columns": [...], "rows": [{"decision": str, "cells": [str, ...]}]}``; floats
        to 4 significant digits.
    """
    rows = [{"decision": decision_class(row["decision"]), "cells": [_cell(v) for v in row.tolist()]}
            for _, row in scores.astype(object).iterrows()]
    return {"columns": list(scores.columns), "rows": rows}
