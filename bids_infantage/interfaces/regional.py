"""Regional myelination maturity of a session (thin wrapper of :mod:`bids_infantage.maturity`)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    File,
    SimpleInterface,
    TraitedSpec,
    traits,
)

#: Columns of ``<prefix>_desc-regional_brainage.tsv`` -> BIDS sidecar entry.
REGIONAL_COLUMNS: dict[str, dict] = {
    "participant_id": {"Description": "Participant identifier (sub-<label>)."},
    "session_id": {"Description": "Session identifier (ses-<label>); n/a without sessions."},
    "region": {"Description": "White-matter region (bids_infantage/data/regions/"
                              "regions_space-infantageRef_dseg.tsv; docs/outputs.md)."},
    "region_index": {"Description": "Value of the region in the region map and in the "
                                    "desc-maturity map's region list."},
    "group": {"Description": "Myelination-order group of the region.",
              "Levels": {"caudal": "brainstem, cerebellum", "central": "internal capsule, "
                         "corpus callosum, centrum semiovale", "peripheral": "lobar white matter"}},
    "n_voxels": {"Description": "Voxels of the region inside the brain mask (3 mm reference grid).",
                 "Units": "count"},
    **{f"contrast_{c}": {
        "Description": f"Median {label} intensity in the region divided by the median in the "
                       "cortical grey matter (within-subject reference); n/a without that image.",
        "Units": "ratio"} for c, label in (("t1w", "T1w"), ("t2w", "T2w"), ("ratio", "T1w/T2w ratio"))},
    **{f"expected_contrast_{c}": {
        "Description": f"Expected {c} contrast of the region at the whole-brain age (BMEXInfant "
                       "template norms, linear in age).", "Units": "ratio"}
       for c in ("t1w", "t2w", "ratio")},
    "maturity_fraction": {
        "Description": "How far the region's contrasts have moved from the 0-month to the "
                       "24-month template's (0 = neonate, 1 = 24 months; mean over channels).",
        "Units": "fraction"},
    "regional_age_months": {
        "Description": "Age (0-24 months) whose expected contrasts best match the region's "
                       "(least squares over the channels).", "Units": "months"},
    "lag_months": {
        "Description": "regional_age_months minus the whole-brain estimate (predicted_age_months "
                       "clipped to 0-24); negative: the region looks younger than the brain.",
        "Units": "months"},
    "lag_rank": {"Description": "1 = the region furthest behind the whole-brain estimate.",
                 "Units": "rank"},
}


def _fmt(value) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


class _RegionalInputSpec(BaseInterfaceInputSpec):
    model_input = File(exists=True, mandatory=True,
                       desc="npz: image (3, 64, 64, 64) T1w, T2w, ratio; mask (64, 64, 64)")
    prediction = File(exists=True, mandatory=True, desc="prediction JSON (whole-brain age)")
    reference_mask = File(exists=True, mandatory=True, desc="the bundle's reference brain mask")
    has_t1w = traits.Bool(mandatory=True)
    has_t2w = traits.Bool(mandatory=True)
    subject = traits.Str(mandatory=True)
    session = traits.Either(None, traits.Str, usedefault=True)


class _RegionalOutputSpec(TraitedSpec):
    out_table = File(exists=True, desc="regional table (TSV, one row per region)")
    out_map = File(exists=True, desc="lag of each region (months) on the reference grid")
    metadata = traits.Dict(desc="sidecar of the table: columns and ordering checks")
    map_metadata = traits.Dict(desc="sidecar of the map")


class RegionalMaturity(SimpleInterface):
    """Regional ages, lags and the myelination-order checks of one session
    (:func:`bids_infantage.maturity.regional.regional_maturity`)."""

    input_spec = _RegionalInputSpec
    output_spec = _RegionalOutputSpec

    def _run_interface(self, runtime):
        import SimpleITK as sitk

        from ..maturity.regional import lag_map, load_norms, load_regions, regional_maturity

        channels = (["t1w"] if self.inputs.has_t1w else []) + (["t2w"] if self.inputs.has_t2w else [])
        if self.inputs.has_t1w and self.inputs.has_t2w:
            channels.append("ratio")
        data = np.load(self.inputs.model_input)
        reference = sitk.ReadImage(self.inputs.reference_mask, sitk.sitkUInt8)
        regions = load_regions(reference)
        pred = json.loads(Path(self.inputs.prediction).read_text())
        result = regional_maturity(data["image"], data["mask"], regions, channels,
                                   float(pred["age"]), load_norms())
        cwd = Path(runtime.cwd)
        base = {"participant_id": f"sub-{self.inputs.subject}",
                "session_id": f"ses-{self.inputs.session}" if self.inputs.session else None}
        lines = ["\t".join(REGIONAL_COLUMNS)]
        for row in result["rows"]:
            row = {**base, **row}
            lines.append("\t".join(_fmt(row.get(c)) for c in REGIONAL_COLUMNS))
        (cwd / "regional.tsv").write_text("\n".join(lines) + "\n")
        img = sitk.GetImageFromArray(lag_map(regions, result["rows"]))
        img.CopyInformation(reference)
        sitk.WriteImage(img, str(cwd / "maturity.nii.gz"))
        ordering = {name: {"EarlierMinusLaterMaturityFraction": round(v["difference"], 4)
                           if math.isfinite(v["difference"]) else None, "Holds": v["holds"]}
                    for name, v in result["ordering"].items()}
        self._results.update(
            out_table=str(cwd / "regional.tsv"), out_map=str(cwd / "maturity.nii.gz"),
            metadata={**REGIONAL_COLUMNS, "WholeBrainAgeMonths": result["whole_brain_age_months"],
                      "Channels": channels, "MyelinationOrdering": ordering},
            map_metadata={"Description": "Regional lag (regional age minus the whole-brain "
                                         "estimate, months) in each white-matter region; 0 "
                                         "outside the regions",
                          "Units": "months", "Regions": {str(r["region_index"]): r["region"]
                                                         for r in result["rows"]}},
        )
        return runtime
