"""Repeated, age-stratified K-fold cross-validation of each input configuration (and of the
Wada et al. 2019 model): the splits, the training jobs and their out-of-fold predictions.
"""
from __future__ import annotations

import logging
import time

import numpy as np
import pandas as pd

from ...utils.errors import InputError
from ..training.recipes import DEFAULT_RECIPE, configuration_settings, recipe_settings
from .cohort import _subset

LOGGER = logging.getLogger("bids_infantage.training")


#: Training settings a cross-validation takes from the shipped default's recipe: its network
#: (channels, pooling), optimizer and loss (epochs, batch_size, lr, loss_weights) and model
#: input and augmentation (no brain-size input, contrast augmentation), and the settings of
#: single configurations (``configurations``; :func:`configuration_settings`)
NETWORK_KEYS = ("epochs", "batch_size", "lr", "channels", "loss_weights", "pooling", "input",
                "configurations")

#: Settings of a cross-validation run (``--settings`` and the CLI flags override them): the
#: :data:`NETWORK_KEYS` of ``recipe_settings(DEFAULT_RECIPE)``, so a cohort retrains the
#: network it would run (until 2e5fa07 a cross-validation trained the previous default's
#: network: mean pooling, lr 2e-3 and a brain-size input).
DEFAULTS = {
    "folds": 5,
    "repeats": 2,
    "seed": 0,
    "members": 1,
    "final_members": 2,
    **{k: v for k, v in recipe_settings(DEFAULT_RECIPE).items() if k in NETWORK_KEYS},
}
#: A tiny configuration for tests and CI (seconds per job).
TINY = {"epochs": 2, "channels": [4, 8, 8, 8], "batch_size": 4, "final_members": 1}


# --------------------------------------------------------------------------- cohorts
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
#: Cohort and settings handed to the training worker processes (set before they fork)
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

    from ..training import predict_members, train_member

    architecture, config, repeat, fold, member, train_idx, test_idx = job
    torch.set_num_threads(1)
    s = configuration_settings(_JOB["settings"], config)
    data = _JOB["data"]
    t0 = time.time()
    seed = _job_seed(model_label(architecture, config), repeat, fold, member, s["seed"])
    kw = dict(epochs=s["epochs"], batch_size=s["batch_size"], lr=s["lr"], channels=s["channels"],
              loss_weights=s["loss_weights"], architecture=architecture, settings=s)
    test = _subset(data, test_idx)
    train = _subset(data, train_idx)
    if architecture == "wada":
        from ..nets.wada2d import OLD_RANGE, YOUNG_RANGE, blend_age_ranges

        preds = []
        for k, (lo, hi) in enumerate((YOUNG_RANGE, OLD_RANGE)):
            ages = data["age"][train_idx]
            part = train_idx[(ages >= lo) & (ages <= hi)]
            net = train_member(_subset(data, part), config, seed=seed + k, **kw)
            preds.append((predict_members([net], test, config, settings=s),
                          predict_members([net], train, config, settings=s)[0][0]))
        ((my, vy, _), fit_y), ((mo, vo, _), fit_o) = preds
        mean, var = blend_age_ranges(my[0], mo[0], vy[0], vo[0])
        return mean, var, time.time() - t0, blend_age_ranges(fit_y, fit_o)[0]
    net = train_member(train, config, seed=seed, **kw)
    means, vars_, _ = predict_members([net], test, config, settings=s)
    fitted = predict_members([net], train, config, settings=s)[0][0]
    return means[0], vars_[0], time.time() - t0, fitted


def _map(fn, jobs, nprocs: int, what: str = "trainings"):
    from ...utils.progress import map_with_progress

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
    from ...group.compare import fold_metrics

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
