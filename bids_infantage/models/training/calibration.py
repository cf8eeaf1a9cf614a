"""Calibration of an ensemble on validation data: the linear correction of the age, the prediction
interval with its domain-shift term, the between-template term from leave-one-template-out,
and the feature statistics of the out-of-distribution check.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from .cohorts import ensure_generator
from .members import predict_members
from .recipes import configuration_settings

LOGGER = logging.getLogger("bids_infantage.training")


#: Age bands (months, of the calibrated prediction) of the domain-shift term
SHIFT_BANDS = (0.0, 6.0, 12.0, 18.0, 24.0)


def validation_predictions(nets, val, config: str, settings: dict, *, perturbed: bool):
    """The members on the validation cohort with the recorded test-time augmentation
    (``settings["tta_shift_voxels"]``): ``(means, vars_, feats, perturbed_means)`` for
    :func:`calibrate`; ``perturbed_means`` (the contrast augmentation drawn from a seed derived
    from ``seed_val``) only when ``perturbed``, else None."""
    shift = int(settings.get("tta_shift_voxels", 0))
    means, vars_, feats = predict_members(nets, val, config, shift_voxels=shift, settings=settings)
    pert = None
    if perturbed:
        pert = predict_members(nets, val, config, shift_voxels=shift, settings=settings,
                               perturb_seed=settings["seed_val"] * 7919)[0]
    return means, vars_, feats, pert


def calibrate(means, vars_, feats, ages, coverage: float = 0.9, perturbed_means=None,
              linear: tuple[float, float] | None = None) -> dict:
    """Calibration on validation data.

    * ``slope``/``intercept``: least-squares fit of true age on the ensemble mean
      (``age = intercept + slope * mean``), which undoes regression toward the mean;
    * ``interval_z``: the quantile of ``|error| / sd`` at ``coverage`` (prediction interval
      half-width = ``interval_z * sd``);
    * with ``perturbed_means`` (M, N: the members on the same samples after the contrast
      augmentation, :func:`_augment` ``contrast=True``, a fixed seed): ``shift_sd_bands``, the
      RMS change of the calibrated age under that perturbation per band of
      :data:`SHIFT_BANDS`. It stands for what the same-family samples cannot show: another
      scanner's or template family's appearance. The interval's SD becomes
      ``sqrt(sd^2 + shift_sd^2)`` and ``interval_z`` is taken on the perturbed errors;
    * feature mean, inverse covariance (shrinkage) and a Mahalanobis-distance threshold (the
      99th percentile on validation, times 2) for the out-of-distribution flag.

    ``linear=(intercept, slope)`` keeps an existing correction instead of fitting one
    (:func:`recalibrate_interval`).
    """
    ens = means.mean(0)
    A = np.stack([np.ones_like(ens), ens], 1)
    intercept, slope = linear if linear is not None else np.linalg.lstsq(A, ages, rcond=None)[0]
    cal = intercept + slope * ens
    sd = np.sqrt(vars_.mean(0) + means.var(0)) * abs(slope)
    sd_total, extra = sd, {}
    if perturbed_means is not None:
        cal_p = intercept + slope * perturbed_means.mean(0)
        # band of each calibrated age; ages outside 0-24 months take the nearest band
        band = np.clip(np.searchsorted(SHIFT_BANDS, cal, side="right") - 1, 0, len(SHIFT_BANDS) - 2)
        change = cal_p - cal
        bands = [[lo, hi, float(np.sqrt(np.mean(change[band == k] ** 2))) if np.any(band == k) else 0.0]
                 for k, (lo, hi) in enumerate(zip(SHIFT_BANDS[:-1], SHIFT_BANDS[1:]))]
        sd_total = np.hypot(sd, np.asarray([b[2] for b in bands])[band])
        z = np.abs(cal_p - ages) / sd_total
        extra = {"shift_sd_bands": bands,
                 "val_mae_perturbed_months": float(np.mean(np.abs(cal_p - ages)))}
    else:
        z = np.abs(cal - ages) / sd
    mu = feats.mean(0)
    cov = np.cov(feats, rowvar=False)
    cov = 0.9 * cov + 0.1 * np.eye(len(mu)) * np.trace(cov) / len(mu)
    icov = np.linalg.inv(cov)
    d = np.sqrt(np.einsum("ni,ij,nj->n", feats - mu, icov, feats - mu))
    return {
        "slope": float(slope),
        "intercept": float(intercept),
        "interval_coverage": coverage,
        "interval_z": float(np.quantile(z, coverage)),
        "feature_mean": mu.tolist(),
        "feature_icov": icov.tolist(),
        "feature_distance_threshold": float(np.quantile(d, 0.99) * 2.0),
        "sd_threshold_months": float(np.quantile(sd_total, 0.99) * 1.5),
        "val_mae_months": float(np.mean(np.abs(cal - ages))),
        "val_mae_uncalibrated_months": float(np.mean(np.abs(ens - ages))),
        "val_interval_coverage": float(np.mean(z <= np.quantile(z, coverage))),
        **extra,
    }


def recalibrate_interval(bundle_dir: Path, cache: Path, shared: Path, *, n_val: int,
                         nprocs: int = 2) -> dict:
    """Add the domain-shift term to a trained bundle's intervals, in place.

    Each configuration's members predict the validation cohort (``cache/val``, generated
    when missing: ``n_val`` samples of the bundle's validation seed, as prefixes of its age
    strata) clean and after the contrast augmentation; :func:`calibrate` with the bundle's
    own linear correction gives ``shift_sd_bands`` and a new ``interval_z``. The point
    estimates do not change; the bundle's ``bundle.json`` is rewritten (its sha256, the
    model's identity in the outputs, changes).

    Returns
    -------
    dict
        Per configuration: old and new ``interval_z`` and the ``shift_sd_bands``.
    """
    import torch

    from ..bundle.model_bundle import ModelBundle
    from ..dataset import generate_cohort, load_cohort

    bundle = ModelBundle(Path(bundle_dir))
    meta = bundle.meta
    settings = meta["training"]["settings"]
    kw = dict(ensure_generator(cache, shared), nprocs=nprocs)
    strata = (settings.get("age_strata") or {}).get("val") or settings["n_val"]
    val = load_cohort(generate_cohort(Path(cache) / "val", n=n_val, seed=settings["seed_val"],
                                      strata=strata, **kw))
    torch.set_num_threads(max(1, nprocs))
    # the augmentation the bundle predicts with (older bundles: mirror only)
    shift = int(meta.get("test_time_augmentation", {}).get("shift_voxels", 0))
    report = {}
    for config, spec in meta["configurations"].items():
        old = spec["calibration"]
        means, vars_, feats, pert = validation_predictions(
            bundle.networks(config), val, config,
            dict(configuration_settings(settings, config), tta_shift_voxels=shift),
            perturbed=True)
        new = calibrate(means, vars_, feats, val["age"], perturbed_means=pert,
                        linear=(old["intercept"], old["slope"]))
        keep = ("interval_z", "shift_sd_bands", "val_mae_perturbed_months", "sd_threshold_months")
        spec["calibration"] = dict(old, **{k: new[k] for k in keep},
                                   interval_calibration={"n_val": int(n_val),
                                                         "val_interval_coverage": new["val_interval_coverage"]})
        report[config] = {"interval_z": [old["interval_z"], new["interval_z"]],
                          "shift_sd_bands": new["shift_sd_bands"],
                          "val_mae_perturbed_months": new["val_mae_perturbed_months"]}
        LOGGER.info("%s: interval_z %.2f -> %.2f, shift SD by band %s", config, old["interval_z"],
                    new["interval_z"], [round(b[2], 2) for b in new["shift_sd_bands"]])
    (Path(bundle_dir) / "bundle.json").write_text(json.dumps(meta, indent=1))
    return report


def template_term(loto: dict, config: str) -> dict:
    """Between-template error of one configuration from leave-one-template-out.

    Each interior BMEXInfant template (6, 9, 12 months) is held out of the synthesis atlas,
    one small member is trained on the rest and predicts the held-out real template
    (``benchmarks/validate_model.py --loto-json``). Its error mixes two sources: the member's
    same-family error (its validation RMSE) and the error of facing a brain the training never
    saw, the part same-family validation cannot show. The second is taken as

        template_sd = sqrt(max(0, mean(error^2) - mean(val_rmse^2)))

    Parameters
    ----------
    loto : dict
        ``{"loto_n": int, "loto_epochs": int, "rows": [...]}``; each row has ``held_out``
        ("6 mo"), the predicted age (months) under ``config`` and ``val_rmse`` ({config:
        months}).
    config : str
        Input configuration.

    Returns
    -------
    dict
        ``template_sd_months`` and ``template_term`` (its provenance: held-out ages, errors and
        validation RMSEs in months, cohort size, epochs).

    Raises
    ------
    ValueError
        When a row lacks ``config`` or its ``val_rmse``.
    """
    rows = loto["rows"]
    missing = [r.get("held_out") for r in rows if config not in r or config not in r.get("val_rmse", {})]
    if missing or not rows:
        raise ValueError(f"leave-one-template-out results lack configuration {config} "
                         f"(held out: {missing or 'no rows'}); rerun benchmarks/validate_model.py "
                         f"with --configs {config}")
    truth = np.asarray([float(r["held_out"].split()[0]) for r in rows])
    errors = np.asarray([float(r[config]) for r in rows]) - truth
    rmse = np.asarray([float(r["val_rmse"][config]) for r in rows])
    sd = float(np.sqrt(max(0.0, np.mean(errors ** 2) - np.mean(rmse ** 2))))
    return {"template_sd_months": sd,
            "template_term": {"source": "leave-one-template-out (benchmarks/validate_model.py)",
                              "held_out_months": truth.tolist(),
                              "errors_months": [round(float(e), 3) for e in errors],
                              "member_val_rmse_months": [round(float(e), 3) for e in rmse],
                              "loto_n": int(loto["loto_n"]), "loto_epochs": int(loto["loto_epochs"])}}


def add_template_term(bundle_dir: Path, loto_json: Path) -> dict:
    """Add the between-template term (:func:`template_term`) to each configuration's interval
    of a bundle, in place; the point estimates do not change, the bundle's ``bundle.json`` is
    rewritten (its sha256 changes). See
    :func:`~bids_infantage.models.bundle.intervals.interval_half_width`.

    Returns
    -------
    dict
        Per configuration: ``template_sd_months`` and its provenance.

    Raises
    ------
    ValueError
        When ``loto_json`` lacks a configuration of the bundle.
    """
    path = Path(bundle_dir) / "bundle.json"
    meta = json.loads(path.read_text())
    loto = json.loads(Path(loto_json).read_text())
    report = {}
    for config, spec in meta["configurations"].items():
        term = template_term(loto, config)
        spec["calibration"].update(term)
        report[config] = term
        LOGGER.info("%s: template SD %.2f months (errors %s)", config, term["template_sd_months"],
                    term["template_term"]["errors_months"])
    path.write_text(json.dumps(meta, indent=1))
    return report
