"""The final models of a cross-validation: a bundle trained on the whole cohort and calibrated
on the out-of-fold predictions, and its predictions on a labelled external set.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..training.recipes import configuration_settings
from .folds import _JOB, _job_seed, _map


def _final_job(job):
    import torch

    from ..training import train_member

    config, member = job
    torch.set_num_threads(1)
    s = configuration_settings(_JOB["settings"], config)
    net = train_member(_JOB["data"], config, seed=_job_seed(config, 99, 99, member, s["seed"]),
                       epochs=s["epochs"], batch_size=s["batch_size"], lr=s["lr"],
                       channels=s["channels"], loss_weights=s["loss_weights"], settings=s)
    return {k: v.clone() for k, v in net.state_dict().items()}


def train_final_bundle(data: dict, configs, settings: dict, predictions: pd.DataFrame,
                       out_dir: Path, *, name: str, provenance: str, nprocs: int = 1) -> dict:
    """Train the final members on the whole cohort and write a model bundle.

    Calibration (slope, intercept, interval) is fitted on the out-of-fold predictions of
    repeat 0; feature statistics on the final member 0's features of the cohort.

    Returns
    -------
    dict
        ``bundle.json`` content.
    """
    import torch

    from ..bundle.resolve import load_bundle
    from ..training import calibrate, members_from_states, predict_members, write_bundle

    default = load_bundle()
    jobs = [(c, m) for c in configs for m in range(settings["final_members"])]
    _JOB.update(data=data, settings=settings)
    states = _map(_final_job, jobs, nprocs, what="final-bundle members")
    torch.set_num_threads(max(1, nprocs))
    nets_by_config, calibrations = {}, {}
    oof = predictions[predictions["repeat"] == 0].set_index("subject")
    for c in configs:
        nets = members_from_states(c, [st for (cfg, _), st in zip(jobs, states) if cfg == c],
                                   settings["channels"], pooling=settings.get("pooling", "mean"))
        _, _, feats = predict_members(nets, data, c, settings=configuration_settings(settings, c))
        rows = oof[oof["configuration"] == c].loc[data["id"]]
        means = rows["predicted_age_raw"].to_numpy(float)[None]
        vars_ = rows["variance"].to_numpy(float)[None]
        calibrations[c] = calibrate(means, vars_, feats, data["age"].astype(float))
        calibrations[c]["fitted_on"] = "out-of-fold predictions (repeat 0)"
        nets_by_config[c] = nets
    return write_bundle(out_dir, nets_by_config, calibrations, settings=settings, name=name,
                        reference_mask=default.reference_mask_path,
                        volume_norms=default.meta["volume_norms_ml"],
                        data_provenance={"cohort": provenance, "n": int(len(data["age"]))})


# --------------------------------------------------------------------------- external set
def predict_external(bundle_dir: Path, data: dict, configs) -> pd.DataFrame:
    """Predict an external labelled set with a bundle: one row per (configuration, subject)."""
    from ..bundle.resolve import load_bundle

    bundle = load_bundle(str(bundle_dir))
    rows = []
    for c in configs:
        for i, sid in enumerate(data["id"]):
            pred = bundle.predict(data["image"][i].astype(np.float32), float(data["volume_ml"][i]),
                                  c, saliency=False)
            rows.append({"configuration": c, "subject": sid, "age": float(data["age"][i]),
                         "predicted_age": pred["age"],
                         "abs_error": abs(pred["age"] - float(data["age"][i]))})
    return pd.DataFrame(rows)


def external_statistics(external: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Metrics per configuration on the external set and pairwise Wilcoxon tests."""
    import itertools

    from ...group.compare import fold_metrics, wilcoxon_external

    metrics = pd.DataFrame([{"configuration": c, "n": len(g), **fold_metrics(g["age"], g["predicted_age"])}
                            for c, g in external.groupby("configuration", sort=False)])
    wide = external.pivot_table(index="subject", columns="configuration", values="abs_error")
    tests = pd.DataFrame([{"a": a, "b": b, **wilcoxon_external(wide[a], wide[b])}
                          for a, b in itertools.combinations(list(metrics["configuration"]), 2)])
    return metrics, tests


# --------------------------------------------------------------------------- report
