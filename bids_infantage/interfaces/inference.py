"""Brain-age inference node (PyTorch ensemble + Grad-CAM) and the per-session age table."""
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
    isdefined,
    traits,
)

from ..image.registration import same_brain
from ..models.transforms import reads_both_images
from ..utils.columns import BRAINAGE_COLUMNS, WADA_COLUMNS
from ..utils.numbers import format_against, format_pair


def pick_device(device: str) -> str:
    """``auto`` -> ``cuda`` when a GPU is visible to torch, else ``cpu``."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda was given but torch sees no GPU; use --device auto")
    return device


class _InferenceInputSpec(BaseInterfaceInputSpec):
    model_input = File(exists=True, mandatory=True, desc="npz from NormalizeToReference")
    volume_ml = traits.Float(mandatory=True, desc="brain volume (ml)")
    model = traits.Str(mandatory=True, desc="model bundle name or folder")
    modality = traits.Str("auto", usedefault=True, desc="input configuration or auto")
    has_t1w = traits.Bool(mandatory=True)
    has_t2w = traits.Bool(mandatory=True)
    t1w_t2w_edge_correlation = traits.Either(
        None, traits.Float, usedefault=True,
        desc="edge correlation of the registered T1w and T2w (None: one image); below "
             "SAME_BRAIN_MIN, --modality auto reads one image")
    device = traits.Enum("auto", "cpu", "cuda", usedefault=True, nohash=True)
    omp_nthreads = traits.Int(1, usedefault=True, nohash=True)


class _InferenceOutputSpec(TraitedSpec):
    prediction = File(exists=True, desc="JSON with the prediction and QC")
    saliency = File(exists=True, desc="Grad-CAM saliency (0..1) in reference space")
    configuration = traits.Str(desc="input configuration used")


class BrainAgeInference(SimpleInterface):
    """Run the model ensemble on one session (``model.eval()``, ``torch.no_grad()``).

    With ``--modality auto`` and a T1w and T2w that failed the same-brain check
    (``t1w_t2w_edge_correlation`` below
    :func:`~bids_infantage.image.registration.same_brain`), the configuration is chosen
    among those that read one image (:meth:`ModelBundle.choose_configuration`,
    ``same_brain=False``) and the prediction's flags say so."""

    input_spec = _InferenceInputSpec
    output_spec = _InferenceOutputSpec

    def _run_interface(self, runtime):
        import SimpleITK as sitk
        import torch

        from ..models.bundle.resolve import load_bundle

        torch.set_num_threads(max(1, self.inputs.omp_nthreads))
        bundle = load_bundle(self.inputs.model)
        one_brain = same_brain(self.inputs.t1w_t2w_edge_correlation)
        config = bundle.choose_configuration(self.inputs.has_t1w, self.inputs.has_t2w, self.inputs.modality,
                                             same_brain=one_brain)
        data = np.load(self.inputs.model_input)
        pred = bundle.predict(data["image"], self.inputs.volume_ml, config,
                              device=pick_device(self.inputs.device))
        if not one_brain and self.inputs.modality == "auto" and not reads_both_images(config):
            image = {"t1w": "T1w", "t2w": "T2w"}.get(config, config)
            pred["flags"] = [*pred["flags"], f"--modality auto read the {image} alone: the T1w and T2w "
                             "may not show the same brain"]
        cwd = Path(runtime.cwd)
        sal = sitk.GetImageFromArray(pred.pop("saliency"))
        sal.CopyInformation(bundle.reference_mask())
        sitk.WriteImage(sal, str(cwd / "saliency_ref.nii.gz"))
        pred.update(configuration=config, model_name=bundle.name, model_sha256=bundle.sha256,
                    volume_ml=self.inputs.volume_ml)
        (cwd / "prediction.json").write_text(json.dumps(pred, indent=1))
        self._results.update(prediction=str(cwd / "prediction.json"),
                             saliency=str(cwd / "saliency_ref.nii.gz"), configuration=config)
        return runtime


QC_DICE_MIN = 0.85


def _fmt(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


class _TableInputSpec(BaseInterfaceInputSpec):
    prediction = File(exists=True, mandatory=True)
    subject = traits.Str(mandatory=True)
    session = traits.Either(None, traits.Str, usedefault=True)
    chronological_age = traits.Either(None, traits.Float, usedefault=True, desc="months")
    t1w_t2w_dice = traits.Either(None, traits.Float, usedefault=True)
    normalization_dice = traits.Float(mandatory=True)
    warnings = traits.List(traits.Str, desc="fallbacks applied upstream")


class _TableOutputSpec(TraitedSpec):
    out_file = File(exists=True, desc="one-row TSV")
    metadata = traits.Dict(desc="column descriptions for the JSON sidecar")


class BrainAgeTable(SimpleInterface):
    """Write the one-row brain-age TSV of a session (columns:
    :data:`~bids_infantage.utils.columns.BRAINAGE_COLUMNS`)."""

    input_spec = _TableInputSpec
    output_spec = _TableOutputSpec

    def _run_interface(self, runtime):
        from ..models.bundle.intervals import outside_age_range

        pred = json.loads(Path(self.inputs.prediction).read_text())
        flags = list(pred["flags"])
        out_of_range = bool(pred["out_of_range"])
        chron = self.inputs.chronological_age
        lo, hi = pred["age_range_months"]
        if chron is not None and outside_age_range(chron, (lo, hi)):
            # the images may look in range (a 6-year-old's brain is about 24-month sized and
            # myelinated), but the model has no valid answer for this child
            flags.append(f"chronological age {chron:.1f} months outside the model range "
                         f"{lo:g}-{hi:g}")
            out_of_range = True
        d12 = self.inputs.t1w_t2w_dice
        if d12 is not None and d12 < QC_DICE_MIN:
            flags.append("poor T1w-T2w registration (mask Dice %s < %s)" % format_pair(d12, QC_DICE_MIN, 3))
        if self.inputs.normalization_dice < QC_DICE_MIN:
            flags.append("poor normalization (mask Dice %s < %s)"
                         % format_pair(self.inputs.normalization_dice, QC_DICE_MIN, 3))
        if isdefined(self.inputs.warnings):
            flags.extend(self.inputs.warnings)
        row = {
            "participant_id": f"sub-{self.inputs.subject}",
            "session_id": f"ses-{self.inputs.session}" if self.inputs.session else None,
            "model_configuration": pred["configuration"],
            "predicted_age_months": pred["age"],
            "predicted_age_sd_months": pred["sd"],
            "predicted_age_lower_months": pred["lower"],
            "predicted_age_upper_months": pred["upper"],
            "interval_coverage": pred["coverage"],
            "chronological_age_months": chron,
            "brain_age_gap_months": None if chron is None else pred["age"] - chron,
            "brain_volume_ml": pred["volume_ml"],
            "brain_volume_z": pred["volume_z"],
            "qc_out_of_range": out_of_range,
            "qc_flags": "; ".join(f.replace("\t", " ") for f in flags) or "none",
            "t1w_t2w_mask_dice": d12,
            "normalization_mask_dice": self.inputs.normalization_dice,
            "model_name": pred["model_name"],
            "model_sha256": pred["model_sha256"],
        }
        columns = dict(BRAINAGE_COLUMNS)
        if pred.get("age_ranges"):  # the Wada et al. (2019) ensemble's two age ranges
            ranges = pred["age_ranges"]
            row.update(wada_age_young_months=ranges["young_months"],
                       wada_age_old_months=ranges["old_months"], wada_weight_old=ranges["weight_old"])
            columns.update(WADA_COLUMNS)
        out = Path(runtime.cwd) / "brainage.tsv"
        text = {c: _fmt(row[c]) for c in columns}
        for column in ("t1w_t2w_mask_dice", "normalization_mask_dice"):  # as the flags say
            if isinstance(row[column], float):
                text[column] = format_against(row[column], QC_DICE_MIN, 3)
        out.write_text("\t".join(columns) + "\n" + "\t".join(text.values()) + "\n")
        self._results["out_file"] = str(out)
        self._results["metadata"] = columns
        return runtime
