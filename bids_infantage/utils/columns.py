"""The columns of the brain-age table, defined once.

The participant level writes them (``sub-X[_ses-Y]_brainage.tsv`` and its JSON sidecar,
:class:`~bids_infantage.interfaces.inference.BrainAgeTable`), the reports read them
(:mod:`bids_infantage.reports.tables`) and the group level checks, concatenates and describes
them (:mod:`bids_infantage.group.cohort`, :mod:`bids_infantage.group.outputs`). Each entry is
the column's BIDS sidecar description (``Description``, ``Units``, ``Levels``).
"""
from __future__ import annotations

#: Column -> BIDS sidecar entry, in the table's order.
BRAINAGE_COLUMNS: dict[str, dict] = {
    "participant_id": {"Description": "Participant identifier (sub-<label>)."},
    "session_id": {
        "Description": "Session identifier (ses-<label>); n/a in datasets without sessions."
    },
    "model_configuration": {
        "Description": "Model input configuration (t1w, t2w, t1w+t2w, ratio, t1w+t2w+ratio): "
        "which contrasts were given to the network."
    },
    "predicted_age_months": {
        "Description": "Predicted brain age: ensemble mean after the model's linear calibration "
        "on validation data (no cohort bias correction; see brain_age_gap_corrected_months "
        "at the group level).",
        "Units": "months",
    },
    "predicted_age_sd_months": {
        "Description": "Standard deviation of the prediction (ensemble spread plus the "
        "predicted aleatoric variance).",
        "Units": "months",
    },
    "predicted_age_lower_months": {
        "Description": "Lower bound of the prediction interval (coverage in interval_coverage).",
        "Units": "months",
    },
    "predicted_age_upper_months": {
        "Description": "Upper bound of the prediction interval (coverage in interval_coverage).",
        "Units": "months",
    },
    "interval_coverage": {
        "Description": "Nominal coverage of the prediction interval, calibrated on validation "
        "data, as a fraction (e.g. 0.9).",
        "Units": "fraction (0-1)",
    },
    "chronological_age_months": {
        "Description": "Chronological age at the session from scans.tsv, sessions.tsv or "
        "participants.tsv (never used by the prediction); n/a when unknown.",
        "Units": "months",
    },
    "brain_age_gap_months": {
        "Description": "Uncorrected brain-age gap (BAG): predicted_age_months - "
        "chronological_age_months. Correlates with age because predictions regress toward "
        "the mean (Smith et al., 2019).",
        "Units": "months",
    },
    "brain_volume_ml": {"Description": "Volume of the brain mask in native space.", "Units": "ml"},
    "brain_volume_z": {
        "Description": "Brain volume as a z-score against the BCP norms at the predicted age.",
        "Units": "standard deviations (z)",
    },
    "qc_out_of_range": {
        "Description": "The input is unlike the 0-24 month training distribution, or the "
        "chronological age is outside the model's range (see qc_flags): do not trust the "
        "number.",
        "Levels": {"true": "out of range", "false": "within range"},
    },
    "qc_flags": {"Description": "Quality-control messages, separated by ';', or 'none'."},
    "t1w_t2w_mask_dice": {
        "Description": "Dice overlap of the T1w and T2w brain masks after rigid registration "
        "(n/a with one modality); below 0.85 raises a flag.",
        "Units": "fraction (0-1)",
    },
    "normalization_mask_dice": {
        "Description": "Dice overlap of the normalized brain mask and the model's reference "
        "mask after affine normalization; below 0.85 raises a flag.",
        "Units": "fraction (0-1)",
    },
    "model_name": {"Description": "Name of the model bundle that made the prediction."},
    "model_sha256": {"Description": "sha256 of the model bundle's bundle.json."},
}


#: Columns added to the brain-age TSV by the Wada et al. (2019) age-range ensemble
#: (``--model wada2019``), after :data:`BRAINAGE_COLUMNS`
WADA_COLUMNS: dict[str, dict] = {
    "wada_age_young_months": {
        "Description": "Prediction of the ensemble's 0-16 month networks (raw mean of the members, "
        "before the model's calibration), Wada et al. (2019).",
        "Units": "months",
    },
    "wada_age_old_months": {
        "Description": "Prediction of the ensemble's 8-24 month networks (raw mean of the members, "
        "before the model's calibration).",
        "Units": "months",
    },
    "wada_weight_old": {
        "Description": "Weight of the 8-24 month networks in the blend: 0 below 8 months, 1 above "
        "16 months, linear in between (at the mean of both predictions).",
        "Units": "fraction (0-1)",
    },
}
