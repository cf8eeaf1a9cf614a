"""Cross-validation and retraining on a labelled cohort (console script ``bids-infantage-cv``).

Protocol after Park, Choi & Gho (JMRI 2026): K-fold cross-validation repeated over random
splits (default 5 folds x 2 repeats, stratified by age), one model per input configuration
(t1w, t2w, t1w+t2w, ratio, t1w+t2w+ratio) trained on the same splits, accuracy per fold and
mean ± SD with 95% CIs, and the configurations compared by one-way ANOVA, pairwise t-tests,
Mann–Whitney U, Cohen's d (:mod:`bids_infantage.group.compare`). Optionally, a labelled
external set is predicted by the final models and the configurations compared there by the
Wilcoxon signed-rank test on absolute errors.

The cohort is either

* a folder of ``bids-infantage`` participant outputs (derivatives): the model inputs are read
  back from ``*_space-infantageRef_desc-preproc_{T1w,T2w}.nii.gz`` and
  ``*_space-infantageRef_desc-ratio_T1wT2w.nii.gz``, the brain volume and chronological age
  from ``*_brainage.tsv`` (sessions without an age are skipped, with a warning); or
* a synthetic cohort from the default model's generator (``--synthetic N`` or
  ``--synthetic-dir`` with ``sample-*.npz`` files from ``bids-infantage-train``).

The result is a model bundle (``OUT/model``) that ``bids-infantage --model OUT/model``
accepts: the final members are trained on the whole cohort; the linear calibration and the
interval are fitted on the out-of-fold predictions of the first repeat; the feature
statistics of the out-of-range check come from the final models on the cohort. Next to it:
``cv_folds.tsv``, ``cv_predictions.tsv``, ``cv_summary.tsv``, ``cv_anova.tsv``,
``cv_pairwise.tsv`` (``cv_external*.tsv``) and ``cv_report.html``.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ..utils.errors import InputError
from .training import DEFAULTS as TRAINING_DEFAULTS
from .transforms import CONFIGURATIONS

LOGGER = logging.getLogger("bids_infantage.training")

#: Settings of a cross-validation run (CLI flags override them); the network and optimizer
#: settings are those of the default model (:data:`bids_infantage.models.training.DEFAULTS`).
DEFAULTS = {
    "folds": 5,
    "repeats": 2,
    "seed": 0,
    "members": 1,
    "final_members": 2,
    **{k: TRAINING_DEFAULTS[k] for k in ("epochs", "batch_size", "lr", "channels", "loss_weights")},
}
#: A tiny configuration for tests and CI (seconds per job).
TINY = {"epochs": 2, "channels": [4, 8, 8, 8], "batch_size": 4, "final_members": 1}


# --------------------------------------------------------------------------- cohorts
def load_derivatives_cohort(deriv_dir) -> dict:
    """Model inputs, brain volumes and chronological ages from participant outputs.

    Parameters
    ----------
    deriv_dir : path
        Output folder of ``bids-infantage ... participant``.

    Returns
    -------
    dict
        ``image`` float16 (N, 3, 64, 64, 64) [T1w, T2w, ratio] (zeros for a missing
        modality), ``wm`` uint8 (N, 64, 64, 64) white-matter target (k-means rule on the T2w
        channel, :func:`~bids_infantage.models.synthesis._wm_probability`), ``has`` bool
        (N, 3), ``age`` float32 (N,) months, ``volume_ml`` float32 (N,), ``id`` list of
        ``sub-X[_ses-Y]``.

    Raises
    ------
    InputError
        No usable session (no brain-age table with a chronological age and its
        reference-space images).
    """
    import SimpleITK as sitk

    from ..reports.core import as_float, read_brainage_tsv
    from .synthesis import _wm_probability

    deriv_dir = Path(deriv_dir)
    tables = sorted(deriv_dir.glob("sub-*/anat/*_brainage.tsv")) + \
        sorted(deriv_dir.glob("sub-*/ses-*/anat/*_brainage.tsv"))
    tables = [t for t in tables if "_desc-" not in t.name]  # not the desc-regional tables
    out = {k: [] for k in ("image", "wm", "has", "age", "volume_ml", "id")}
    skipped = []
    for table in tables:
        row = read_brainage_tsv(table)
        prefix = table.name[: -len("_brainage.tsv")]
        age = as_float(row.get("chronological_age_months"))
        volume = as_float(row.get("brain_volume_ml"))
        if age is None or volume is None:
            skipped.append(f"{prefix} (no chronological age)")
            continue
        files = [table.parent / f"{prefix}_space-infantageRef_desc-preproc_T1w.nii.gz",
                 table.parent / f"{prefix}_space-infantageRef_desc-preproc_T2w.nii.gz",
                 table.parent / f"{prefix}_space-infantageRef_desc-ratio_T1wT2w.nii.gz"]
        has = [f.exists() for f in files]
        if not (has[0] or has[1]):
            skipped.append(f"{prefix} (no space-infantageRef images: rerun the participant level "
                           "with this version)")
            continue
        chans = [sitk.GetArrayFromImage(sitk.ReadImage(str(f), sitk.sitkFloat32)) if h else None
                 for f, h in zip(files, has)]
        shape = next(c.shape for c in chans if c is not None)
        image = np.stack([c if c is not None else np.zeros(shape, np.float32) for c in chans])
        mask = image[:2].max(0) > 0
        wm = _wm_probability(image[1], mask) if has[1] else np.zeros(shape, np.float32)
        out["image"].append(image.astype(np.float16))
        out["wm"].append((wm > 0.5).astype(np.uint8))
        out["has"].append(has)
        out["age"].append(age)
        out["volume_ml"].append(volume)
        out["id"].append(prefix)
    for item in skipped:
        LOGGER.warning("skipped %s", item)
    if not out["id"]:
        raise InputError(f"{deriv_dir}: no session with a brain-age table, a chronological age "
                         "and reference-space images; run `bids-infantage BIDS_DIR "
                         f"{deriv_dir} participant` on a dataset with ages first")
    return {"image": np.stack(out["image"]), "wm": np.stack(out["wm"]),
            "has": np.asarray(out["has"], bool), "age": np.asarray(out["age"], np.float32),
            "volume_ml": np.asarray(out["volume_ml"], np.float32), "id": out["id"]}


def synthetic_cohort(n: int, *, seed: int, cache_dir: Path, shared: Path, nprocs: int = 1) -> dict:
    """``n`` synthetic infants from the default model's generator (ages uniform in 0-24
    months), each passed through the shared preprocessing; cached in ``cache_dir``.

    Returns
    -------
    dict
        As :func:`load_derivatives_cohort`.
    """
    from .dataset import generate_cohort
    from .training import ensure_generator

    cache_dir = Path(cache_dir)
    paths = generate_cohort(cache_dir / f"cv-synthetic-seed{seed}", n=n, seed=seed,
                            nprocs=nprocs, **ensure_generator(cache_dir, shared))
    return load_sample_files(paths)


def load_sample_files(paths) -> dict:
    """Cohort from ``sample-*.npz`` files of :func:`~bids_infantage.models.dataset.generate_cohort`."""
    from .dataset import load_cohort

    paths = sorted(Path(p) for p in paths)
    if not paths:
        raise InputError("no sample-*.npz files given: pass --synthetic N or a folder that holds "
                         "samples made by bids-infantage-train")
    data = load_cohort(paths)
    data["has"] = np.ones((len(paths), 3), bool)
    data["id"] = [p.stem for p in paths]
    return data


def _subset(data: dict, idx) -> dict:
    return {k: (v[idx] if isinstance(v, np.ndarray) else [v[i] for i in idx]) for k, v in data.items()}


def usable_configurations(data: dict, configs) -> list[str]:
    """Configurations whose channels exist for every subject of the cohort."""
    return [c for c in configs if data["has"][:, list(CONFIGURATIONS[c])].all()]


# --------------------------------------------------------------------------- splits
def cv_splits(ages, folds: int, repeats: int, seed: int) -> list[tuple[int, int, np.ndarray, np.ndarray]]:
    """Repeated K-fold splits stratified by age.

    In each repeat the subjects are sorted by age (ties broken at random) and every
    consecutive block of ``folds`` subjects is dealt at random over the folds, so each fold
    spans the whole age range.

    Parameters
    ----------
    ages : array-like, shape (N,)
        Months.

    Returns
    -------
    list of (repeat, fold, train_idx, test_idx)

    Raises
    ------
    InputError
        Fewer subjects than ``2 * folds``.
    """
    ages = np.asarray(ages, float)
    n = len(ages)
    if folds < 2 or n < 2 * folds:
        raise InputError(f"{n} labelled subjects cannot be split into {folds} folds "
                         f"(need at least {2 * max(folds, 2)}); use --folds with a smaller number")
    out = []
    for r in range(repeats):
        rng = np.random.default_rng(seed + 7919 * r)
        order = np.lexsort((rng.random(n), ages))
        assign = np.empty(n, int)
        for start in range(0, n, folds):
            block = order[start:start + folds]
            assign[block] = rng.permutation(folds)[: len(block)]
        for k in range(folds):
            test = np.flatnonzero(assign == k)
            out.append((r, k, np.flatnonzero(assign != k), test))
    return out


# --------------------------------------------------------------------------- training jobs
_JOB: dict = {}


def _job_seed(config: str, repeat: int, fold: int, member: int, seed: int) -> int:
    return seed * 1_000_003 + 10_007 * repeat + 101 * fold + 11 * member + sum(map(ord, config))


def model_label(architecture: str, config: str) -> str:
    """Row label of a model in the tables: the configuration, prefixed for other architectures."""
    return config if architecture == "multitask" else f"{architecture}:{config}"


def _run_job(job):
    """Train one member on one fold and predict its test subjects (worker function).

    For the Wada et al. (2019) architecture a member is their age-range ensemble: one network
    trained on the training subjects aged 0-16 months, one on those aged 8-24 months, blended
    by :func:`~bids_infantage.models.nets.wada2d.blend_age_ranges`.
    """
    import torch

    from .training import predict_members, train_member

    architecture, config, repeat, fold, member, train_idx, test_idx = job
    torch.set_num_threads(1)
    s = _JOB["settings"]
    data = _JOB["data"]
    t0 = time.time()
    seed = _job_seed(model_label(architecture, config), repeat, fold, member, s["seed"])
    kw = dict(epochs=s["epochs"], batch_size=s["batch_size"], lr=s["lr"], channels=s["channels"],
              loss_weights=s["loss_weights"], architecture=architecture)
    test = _subset(data, test_idx)
    train = _subset(data, train_idx)
    if architecture == "wada":
        from .nets.wada2d import OLD_RANGE, YOUNG_RANGE, blend_age_ranges

        preds = []
        for k, (lo, hi) in enumerate((YOUNG_RANGE, OLD_RANGE)):
            ages = data["age"][train_idx]
            part = train_idx[(ages >= lo) & (ages <= hi)]
            net = train_member(_subset(data, part), config, seed=seed + k, **kw)
            preds.append((predict_members([net], test, config),
                          predict_members([net], train, config)[0][0]))
        ((my, vy, _), fit_y), ((mo, vo, _), fit_o) = preds
        mean, var = blend_age_ranges(my[0], mo[0], vy[0], vo[0])
        return mean, var, time.time() - t0, blend_age_ranges(fit_y, fit_o)[0]
    net = train_member(train, config, seed=seed, **kw)
    means, vars_, _ = predict_members([net], test, config)
    fitted = predict_members([net], train, config)[0][0]
    return means[0], vars_[0], time.time() - t0, fitted


def _map(fn, jobs, nprocs: int, what: str = "trainings"):
    from ..utils.progress import map_with_progress

    def describe(job):
        if len(job) == 2:  # final bundle: (configuration, member)
            return f"{job[0]} member {job[1]}"
        return f"{model_label(job[0], job[1])} repeat {job[2]} fold {job[3]} member {job[4]}"

    return map_with_progress(fn, jobs, nprocs, logger=LOGGER, what=what, describe=describe)


def cross_validate(data: dict, configs, settings: dict, nprocs: int = 1, wada_configs=()):
    """Repeated K-fold CV of every configuration on the same splits.

    ``configs`` are trained with the multi-task 3D network; ``wada_configs`` with the Wada et
    al. (2019) five-level 2D age-range ensemble (rows labelled ``wada:<configuration>``).

    Returns
    -------
    folds : DataFrame
        One row per (configuration, repeat, fold): ``n_train``, ``n_test``, ``mae``,
        ``rmse``, ``r2``, ``pearson_r``, ``spearman_rho``, ``seconds``.
    predictions : DataFrame
        One row per (configuration, repeat, subject): ``age``, ``predicted_age`` (months),
        ``predicted_age_raw`` (ensemble mean of the fold's members before calibration),
        ``variance`` (months², predicted plus ensemble variance, before calibration),
        ``fold``.

    As in the shipped models, the ensemble mean is calibrated linearly against regression
    toward the mean (``age = a + b * mean``); within CV, ``a`` and ``b`` are fitted on the
    fold's own training subjects (their in-sample predictions), never on its test subjects.
    Fold metrics are given for the calibrated (``mae`` ...) and raw (``mae_raw``) predictions.
    """
    from ..group.compare import fold_metrics

    splits = cv_splits(data["age"], settings["folds"], settings["repeats"], settings["seed"])
    models = [("multitask", c) for c in configs] + [("wada", c) for c in wada_configs]
    jobs = [(a, c, r, k, m, tr, te) for a, c in models for (r, k, tr, te) in splits
            for m in range(settings["members"])]
    LOGGER.info("cross-validation: %d model(s) x %d split(s) x %d member(s) = %d "
                "trainings on %d subjects", len(models), len(splits), settings["members"],
                len(jobs), len(data["age"]))
    _JOB.update(data=data, settings=settings)
    results = _map(_run_job, jobs, nprocs)
    fold_rows, pred_rows = [], []
    for a, c in models:
        label = model_label(a, c)
        for r, k, tr, te in splits:
            parts = [res for job, res in zip(jobs, results) if job[:4] == (a, c, r, k)]
            means = np.stack([p[0] for p in parts])
            vars_ = np.stack([p[1] for p in parts])
            raw = means.mean(0)
            fitted = np.stack([p[3] for p in parts]).mean(0)
            intercept, slope = np.polyfit(fitted, data["age"][tr].astype(float), 1)[::-1]
            pred = intercept + slope * raw
            var = vars_.mean(0) + means.var(0)  # before calibration
            true = data["age"][te].astype(float)
            fold_rows.append({"configuration": label, "repeat": r, "fold": k, "n_train": len(tr),
                              "n_test": len(te), **fold_metrics(true, pred),
                              "mae_raw": float(np.mean(np.abs(raw - true))),
                              "calibration_slope": float(slope),
                              "seconds": float(sum(p[2] for p in parts))})
            for i, idx in enumerate(te):
                pred_rows.append({"configuration": label, "repeat": r, "fold": k,
                                  "subject": data["id"][idx], "age": float(true[i]),
                                  "predicted_age": float(pred[i]),
                                  "predicted_age_raw": float(raw[i]), "variance": float(var[i])})
    return pd.DataFrame(fold_rows), pd.DataFrame(pred_rows)


# --------------------------------------------------------------------------- final bundle
def _final_job(job):
    import torch

    from .training import train_member

    config, member = job
    torch.set_num_threads(1)
    s = _JOB["settings"]
    net = train_member(_JOB["data"], config, seed=_job_seed(config, 99, 99, member, s["seed"]),
                       epochs=s["epochs"], batch_size=s["batch_size"], lr=s["lr"],
                       channels=s["channels"], loss_weights=s["loss_weights"])
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

    from .bundle import load_bundle
    from .training import calibrate, members_from_states, predict_members, write_bundle

    default = load_bundle()
    jobs = [(c, m) for c in configs for m in range(settings["final_members"])]
    _JOB.update(data=data, settings=settings)
    states = _map(_final_job, jobs, nprocs, what="final-bundle members")
    torch.set_num_threads(max(1, nprocs))
    nets_by_config, calibrations = {}, {}
    oof = predictions[predictions["repeat"] == 0].set_index("subject")
    for c in configs:
        nets = members_from_states(c, [st for (cfg, _), st in zip(jobs, states) if cfg == c],
                                   settings["channels"])
        _, _, feats = predict_members(nets, data, c)
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
    from .bundle import load_bundle

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

    from ..group.compare import fold_metrics, wilcoxon_external

    metrics = pd.DataFrame([{"configuration": c, "n": len(g), **fold_metrics(g["age"], g["predicted_age"])}
                            for c, g in external.groupby("configuration", sort=False)])
    wide = external.pivot_table(index="subject", columns="configuration", values="abs_error")
    tests = pd.DataFrame([{"a": a, "b": b, **wilcoxon_external(wide[a], wide[b])}
                          for a, b in itertools.combinations(list(metrics["configuration"]), 2)])
    return metrics, tests


# --------------------------------------------------------------------------- report
def _fmt_table(df: pd.DataFrame) -> str:
    return df.to_html(index=False, float_format=lambda v: f"{v:.4g}", na_rep="n/a", border=0)


def write_outputs(out_dir: Path, folds, predictions, settings, configs, *, n_subjects: int,
                  seconds: float, external=None, source: str = "") -> dict:
    """Statistics tables (TSV) and ``cv_report.html``; returns the tables."""
    from ..group.compare import anova_configurations, pairwise_comparisons, summarize_folds
    from ..utils.io import atomic_write_text

    out_dir.mkdir(parents=True, exist_ok=True)
    summary = summarize_folds(folds)
    anova = pd.DataFrame([anova_configurations(folds, m) for m in ("mae", "rmse")])
    subject_errors = (predictions.assign(abs_error=(predictions["predicted_age"] - predictions["age"]).abs())
                      .groupby(["configuration", "subject"], as_index=False)["abs_error"].mean())
    n_test = int(round(folds["n_test"].mean()))
    n_train = int(round(folds["n_train"].mean()))
    pairwise = pairwise_comparisons(folds, subject_errors, n_train=n_train, n_test=n_test) \
        if len(configs) > 1 else pd.DataFrame()
    tables = {"cv_folds": folds, "cv_predictions": predictions, "cv_summary": summary,
              "cv_anova": anova, "cv_pairwise": pairwise}
    if external is not None:
        ext_metrics, ext_tests = external_statistics(external)
        tables.update(cv_external_predictions=external, cv_external_metrics=ext_metrics,
                      cv_external_wilcoxon=ext_tests)
    for name, df in tables.items():
        atomic_write_text(out_dir / f"{name}.tsv", df.to_csv(sep="\t", index=False, na_rep="n/a",
                                                             float_format="%.6g"))
    mae = summary[summary.metric == "mae"][["configuration", "mean", "sd", "ci_low", "ci_high", "n"]]
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>bids-infantage "
        "cross-validation</title><style>body{font-family:sans-serif;max-width:70em;margin:auto}"
        "table{border-collapse:collapse}td,th{padding:2px 8px;border-bottom:1px solid #ccc}"
        "</style></head><body>",
        "<h1>bids-infantage cross-validation</h1>",
        f"<p>Cohort: {source} ({n_subjects} subjects). {settings['folds']}-fold CV stratified by "
        f"age, {settings['repeats']} repeat(s) of random splits, {settings['members']} member(s) "
        f"per fold, {settings['epochs']} epochs; {len(folds)} fold evaluations in "
        f"{seconds / 60:.1f} min. Ages in months. Predictions are the ensemble mean calibrated "
        "linearly on each fold's training subjects (as the shipped models are calibrated); "
        "<code>mae_raw</code> in cv_folds.tsv is before calibration.</p>",
        "<h2>MAE per configuration (mean ± SD over folds, t-based 95% CI)</h2>", _fmt_table(mae),
        "<h2>All metrics</h2>", _fmt_table(summary),
        "<h2>One-way ANOVA across configurations (fold metrics; scipy.stats.f_oneway)</h2>",
        _fmt_table(anova),
    ]
    if len(pairwise):
        parts += ["<h2>Pairwise comparisons</h2><p>mae_diff = MAE(a) − MAE(b) over paired folds "
                  "with its t-interval; t/p_t: paired t-test on fold MAEs; t_corrected: Nadeau & "
                  "Bengio corrected resampled t-test; Mann–Whitney U and Cohen's d on subject "
                  "absolute errors (mean over repeats); *_holm: Holm-adjusted.</p>",
                  _fmt_table(pairwise)]
    if external is not None:
        parts += ["<h2>External set</h2>", _fmt_table(tables["cv_external_metrics"]),
                  "<h3>Wilcoxon signed-rank on paired absolute errors</h3>",
                  _fmt_table(tables["cv_external_wilcoxon"])]
    parts.append("<p>Methods: Park, Choi &amp; Gho, JMRI 2026 (protocol); Nadeau &amp; Bengio, "
                 "Machine Learning 2003 (corrected t-test).</p></body></html>\n")
    atomic_write_text(out_dir / "cv_report.html", "\n".join(parts))
    return tables


# --------------------------------------------------------------------------- CLI
def _print_table(tables: dict) -> None:
    summary = tables["cv_summary"]
    wide = summary.pivot_table(index="configuration", columns="metric", values="mean", sort=False)
    print("\n| configuration | MAE (mean ± SD) | 95% CI | RMSE | R² | Pearson r | Spearman ρ |")
    print("|---|---|---|---|---|---|---|")
    for c in wide.index:
        row = summary[(summary.configuration == c) & (summary.metric == "mae")].iloc[0]
        print(f"| {c} | {row['mean']:.2f} ± {row['sd']:.2f} | {row['ci_low']:.2f}–{row['ci_high']:.2f} "
              f"| {wide.loc[c, 'rmse']:.2f} | {wide.loc[c, 'r2']:.3f} | {wide.loc[c, 'pearson_r']:.3f} "
              f"| {wide.loc[c, 'spearman_rho']:.3f} |")
    a = tables["cv_anova"].iloc[0]
    print(f"\nANOVA on fold MAE: F({a['df_between']}, {a['df_within']}) = {a['f']:.2f}, p = {a['p']:.3g}")


def main(argv=None) -> int:
    """Console script ``bids-infantage-cv``."""
    p = argparse.ArgumentParser(
        prog="bids-infantage-cv",
        description="Cross-validate and retrain the brain-age model on a labelled cohort "
                    "(participant outputs of bids-infantage, or a synthetic cohort).")
    p.add_argument("derivatives", nargs="?", type=Path,
                   help="output folder of `bids-infantage ... participant` on a dataset with ages")
    p.add_argument("output_dir", type=Path, help="where the statistics and the bundle go")
    p.add_argument("--synthetic", type=int, metavar="N",
                   help="use N synthetic infants from the default model's generator instead")
    p.add_argument("--synthetic-dir", type=Path,
                   help="use the sample-*.npz files in this folder (from bids-infantage-train)")
    p.add_argument("--shared", type=Path, default=Path("../shared"),
                   help="templates and BCP masks for --synthetic (default ../shared)")
    p.add_argument("--cache-dir", type=Path, default=Path("training-cache"))
    p.add_argument("--external", type=Path,
                   help="participant outputs of a labelled external set (Wilcoxon tests)")
    p.add_argument("--configs", nargs="+", default=list(CONFIGURATIONS), choices=list(CONFIGURATIONS),
                   help="configurations of the multi-task 3D model (Park et al. 2026)")
    p.add_argument("--wada", nargs="*", default=[], choices=list(CONFIGURATIONS), metavar="CONFIG",
                   help="also cross-validate the Wada et al. (2019) five-level 2D age-range "
                        "ensemble on these configurations, e.g. --wada t1w+t2w (CV table only; "
                        "the bundle holds the 3D models)")
    for key in ("folds", "repeats", "seed", "epochs", "members", "final_members"):
        p.add_argument(f"--{key.replace('_', '-')}", type=int, default=None,
                       help=f"default {DEFAULTS[key]}")
    p.add_argument("--tiny", action="store_true", help="tiny network and 2 epochs (tests, CI)")
    p.add_argument("--no-bundle", action="store_true", help="statistics only, no final model")
    p.add_argument("--name", default="infantage-cohort", help="name of the bundle")
    p.add_argument("--nprocs", type=int, default=os.cpu_count() or 1)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="bids-infantage-cv: %(message)s")
    sources = [x for x in (args.derivatives, args.synthetic, args.synthetic_dir) if x is not None]
    if len(sources) != 1:
        p.error("give exactly one cohort: DERIVATIVES, --synthetic N or --synthetic-dir")
    settings = json.loads(json.dumps(DEFAULTS))
    if args.tiny:
        settings.update(TINY)
    for key in ("folds", "repeats", "seed", "epochs", "members", "final_members"):
        if getattr(args, key) is not None:
            settings[key] = getattr(args, key)
    try:
        if args.derivatives is not None:
            data = load_derivatives_cohort(args.derivatives)
            source = f"participant outputs in {args.derivatives}"
        elif args.synthetic is not None:
            data = synthetic_cohort(args.synthetic, seed=settings["seed"] + 11,
                                    cache_dir=args.cache_dir, shared=args.shared, nprocs=args.nprocs)
            source = f"{args.synthetic} synthetic infants (generator seed {settings['seed'] + 11})"
        else:
            data = load_sample_files(sorted(args.synthetic_dir.glob("sample-*.npz")))
            source = f"synthetic samples in {args.synthetic_dir}"
        if not data["wm"].any():
            settings["loss_weights"]["seg"] = 0.0  # no T2w: no white-matter target
        configs = usable_configurations(data, args.configs)
        wada_configs = usable_configurations(data, args.wada)
        if not configs:
            raise InputError("no requested configuration has its images for every subject; "
                             "choose --configs among those the cohort's modalities allow")
        external = load_derivatives_cohort(args.external) if args.external else None
        t0 = time.time()
        folds, predictions = cross_validate(data, configs, settings, args.nprocs, wada_configs)
        seconds = time.time() - t0
        external_preds = None
        if not args.no_bundle:
            bundle_dir = args.output_dir / "model"
            if bundle_dir.exists():
                shutil.rmtree(bundle_dir)
            train_final_bundle(data, configs, settings, predictions, bundle_dir, name=args.name,
                               provenance=source, nprocs=args.nprocs)
            if external is not None:
                external_preds = predict_external(bundle_dir, external,
                                                  usable_configurations(external, configs))
        tables = write_outputs(args.output_dir, folds, predictions, settings,
                               configs + [model_label("wada", c) for c in wada_configs],
                               n_subjects=len(data["age"]), seconds=seconds,
                               external=external_preds, source=source)
    except InputError as exc:
        print(f"bids-infantage-cv: error: {exc}", file=sys.stderr)
        return 2
    _print_table(tables)
    print(f"\ncross-validation took {seconds / 60:.1f} min; report: "
          f"{args.output_dir / 'cv_report.html'}"
          + ("" if args.no_bundle else f"; model: {args.output_dir / 'model'}"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
