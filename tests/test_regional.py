"""Regional myelination maturity (#16): a synthetic regional delay ranks first."""
from __future__ import annotations

import numpy as np
import pytest

from bids_infantage.maturity import regional
from bids_infantage.maturity.atlas import REFERENCE_REGION, REGIONS


def _synthetic_session(norms, regions, age, delayed=None, delayed_age=None):
    """Model input whose regional contrasts equal the norms at ``age`` (one region at another)."""
    image = np.zeros((3, *regions.shape), np.float32)
    mask = regions > 0
    ages = norms["ages"]
    image[:, regions == REFERENCE_REGION] = 0.6
    for index, (name, _) in REGIONS.items():
        if index == REFERENCE_REGION:
            continue
        a = delayed_age if name == delayed else age
        for c, channel in enumerate(regional.CHANNELS):
            values = norms["contrast"][name][channel]
            if np.all(np.isfinite(values)):
                image[c, regions == index] = 0.6 * np.interp(a, ages, values)
    return image * 1.7, mask  # a global scaling must not matter


@pytest.mark.parametrize("delayed", ["frontal_wm", "occipital_wm"])
def test_delayed_region_ranks_first(delayed):
    norms = regional.load_norms()
    regions = regional.load_regions()
    image, mask = _synthetic_session(norms, regions, 12.0, delayed=delayed, delayed_age=6.0)
    out = regional.regional_maturity(image, mask, regions, regional.CHANNELS, 12.0, norms)
    rows = {r["region"]: r for r in out["rows"]}
    assert rows[delayed]["lag_rank"] == 1
    assert rows[delayed]["regional_age_months"] == pytest.approx(6.0, abs=0.5)
    others = [r["lag_months"] for r in out["rows"] if r["region"] != delayed and r["lag_rank"]]
    assert max(abs(v) for v in others) < 0.5


def test_shipped_norms_match_regions():
    norms = regional.load_norms()
    regions = regional.load_regions()
    assert set(norms["contrast"]) == set(regional.region_names())
    for index in REGIONS:
        assert (regions == index).sum() >= regional.MIN_VOXELS, REGIONS[index]
