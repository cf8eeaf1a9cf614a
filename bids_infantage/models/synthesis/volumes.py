"""Brain-volume norms of the 206 real BCP masks by age group: the size of a synthetic infant
(step 4 of the recipe in :mod:`bids_infantage.models.synthesis`) and the volume norms a bundle
records.
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np


def read_bcp_volumes(masks_tsv: str | Path) -> dict[float, np.ndarray]:
    """Real brain volumes (ml) of the BCP masks by nominal age group (months)."""
    groups: dict[float, list] = {}
    with open(masks_tsv) as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            groups.setdefault(float(row["age_months"]), []).append(float(row["volume_ml"]))
    return {k: np.asarray(v) for k, v in sorted(groups.items())}


def volume_norm(volumes: dict[float, np.ndarray], age_months: float) -> tuple[float, float]:
    """Mean and SD (ml) of brain volume at an age, interpolated between BCP groups."""
    ages = np.asarray(list(volumes))
    means = np.asarray([v.mean() for v in volumes.values()])
    sds = np.asarray([v.std(ddof=1) for v in volumes.values()])
    return float(np.interp(age_months, ages, means)), float(np.interp(age_months, ages, sds))
