"""Training of the default model bundle from ``../shared`` (one command: ``bids-infantage-train``).

Steps (all cached in ``--cache-dir``, so an interrupted run resumes):

1. reference mask and synthesis atlas from the BMEXInfant templates
   (:mod:`bids_infantage.models.synthesis`);
2. synthetic training and validation cohorts passed through the shared preprocessing
   (:mod:`bids_infantage.models.dataset`); with ``--recipe labels`` instead, label fields
   and cohorts drawn in reference space from the anatomy of the 12 real ``infant-asegs``
   painted with the templates' contrast (:mod:`bids_infantage.models.label_synthesis`;
   ``labels-train``, ``labels-val``);
3. for each input configuration, an ensemble of :class:`MultiTaskAgeNet` members (each
   cached in ``--cache-dir/members`` with a fingerprint of its settings, so a larger
   ``--members`` trains only the new ones);
4. calibration on the validation cohort: a linear correction of the ensemble mean (counters
   regression toward the middle of the age range), a scale for the prediction interval, and
   feature statistics for the out-of-distribution check;
5. the bundle: safetensors weights + ``bundle.json`` (with sha256 of every file) +
   ``reference_mask.nii.gz``.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import time
from pathlib import Path

import numpy as np

from ..utils.checksums import sha256
from .transforms import CONFIGURATIONS, volume_feature

LOGGER = logging.getLogger("bids_infantage.training")

DEFAULTS = {
    "n_train": 512,
    "n_val": 96,
    "seed_train": 1,
    "seed_val": 2,
    "epochs": 24,
    "batch_size": 8,
    "lr": 2e-3,
    "members": 4,
    "tta_shift_voxels": 1,
    "channels": [12, 24, 48, 64],
    "loss_weights": {"l1": 1.0, "nll": 0.2, "seg": 0.3, "recon": 0.3},
    # ages are drawn for 512 / 96 strata and a cohort is their prefix, so a smaller
    # --n-train / --n-val reuses the samples of the full one (generate_cohort)
    "age_strata": {"train": 512, "val": 96},
}


#: Model input and augmentation of the transfer recipe (issue #14): rank standardization, no
#: brain-size input, contrast augmentation
TRANSFER_RECIPE = {
    "input": {"intensity": "rank", "rank_erode_voxels": 1, "volume_feature": "none",
              "augment": "contrast"},
}

#: Label-driven synthesis (issue #14; :mod:`bids_infantage.models.label_synthesis`): anatomy
#: of the 12 real infants, contrast of the templates, 99th-percentile intensities, no brain-size
#: input, contrast augmentation
LABEL_RECIPE = {
    "synthesis": "labels",
    "input": {"volume_feature": "none", "augment": "contrast"},
}


def paint_csf(x, channels, ventricles, rng):
    """Paint cerebrospinal fluid into one standardized sample (numpy, in place).

    The BMEXInfant templates show no ventricular CSF contrast (see
    :func:`~bids_infantage.models.synthesis.build_ventricle_atlas`); real scans do. With
    probability 0.8 the ventricles of a random real infant (``ventricles`` (K, X, Y, Z),
    partial volume in [0, 1], sharpened or softened by a random power) are painted, and with
    probability 0.5 an extra-axial CSF layer on the brain mask's outer voxel shell: T2w
    towards 0.95-1.15 (CSF is the brightest tissue on T2w, about the 99th percentile), T1w
    towards 0.05-0.25, the T1w/T2w ratio towards their quotient.

    Parameters
    ----------
    x : ndarray (C, X, Y, Z)
        One sample's channels, 99th-percentile standardized (0 outside the brain).
    channels : sequence of int
        Index of each channel of ``x`` in :data:`~bids_infantage.models.transforms.CHANNELS`
        (0 T1w, 1 T2w, 2 ratio).
    """
    from scipy.ndimage import binary_erosion

    mask = np.any(x > 0, axis=0)
    w = np.zeros(mask.shape, np.float32)
    if ventricles is not None and len(ventricles) and rng.random() < 0.8:
        v = ventricles[int(rng.integers(len(ventricles)))]
        w = np.clip(v, 0, 1) ** rng.uniform(0.5, 2.0) * rng.uniform(0.7, 1.0)
    if rng.random() < 0.5:
        shell = mask & ~binary_erosion(mask)
        w = np.where(shell, np.maximum(w, rng.uniform(0.3, 0.9)), w)
    w = (w * mask).astype(np.float32)
    t1, t2 = rng.uniform(0.05, 0.25), rng.uniform(0.95, 1.15)
    target = {0: t1, 1: t2, 2: t1 / t2}
    for i, c in enumerate(channels):
        x[i] = (1 - w) * x[i] + w * target[int(c)]
    return x


def _augment(x, vol, rng, contrast: bool = False, channels=None, ventricles=None):
    """On-the-fly augmentation of a batch (numpy): L-R flip, shift, per-channel gamma and
    scale, noise, brain-volume jitter (+-3%).

    ``contrast=True`` (the transfer recipe, issue #14) adds what separates one template
    family, scanner or single scan from another at the same age: Gaussian blur (sigma up to
    1 voxel of 3 mm; population averages are blurrier than single scans), local contrast
    scaled by 0.6-1.4 around a 6 mm smooth version, a brain-mask shell of one voxel removed
    (another skull-strip convention), and brain-volume jitter of +-20%.

    ``ventricles`` (K, X, Y, Z) paints CSF into each sample first (:func:`paint_csf`;
    ``channels``: each channel's index in
    :data:`~bids_infantage.models.transforms.CHANNELS`).
    """
    from scipy.ndimage import binary_erosion, gaussian_filter

    x = x.copy()
    for i in range(x.shape[0]):
        if ventricles is not None:
            paint_csf(x[i], channels, ventricles, rng)
        if rng.random() < 0.5:
            x[i] = x[i][..., ::-1]  # last array axis is x (left-right) in SimpleITK order
        shift = rng.integers(-2, 3, size=3)
        x[i] = np.roll(x[i], tuple(shift), axis=(1, 2, 3))
        if contrast:
            mask = np.any(x[i] > 0, axis=0)
            if rng.random() < 0.3:
                mask = binary_erosion(mask)
            for c in range(x.shape[1]):
                ch = x[i, c].astype(np.float32)
                if rng.random() < 0.5:
                    ch = gaussian_filter(ch, rng.uniform(0.3, 1.0))
                if rng.random() < 0.5:
                    smooth = gaussian_filter(ch, 2.0)
                    ch = smooth + rng.uniform(0.6, 1.4) * (ch - smooth)
                x[i, c] = np.clip(ch, 1e-3, None) * mask
        for c in range(x.shape[1]):
            m = x[i, c] > 0
            x[i, c][m] = np.clip(x[i, c][m], 0, None) ** np.exp(rng.normal(0, 0.08)) * rng.uniform(0.92, 1.08)
        x[i] += (rng.normal(0, rng.uniform(0, 0.03), x[i].shape) * (x[i] > 0)).astype(x.dtype)
    vol = vol * np.exp(rng.normal(0, 0.2 if contrast else 0.03, vol.shape))
    return np.ascontiguousarray(x), vol


def input_normalization(settings: dict) -> dict:
    """The ``normalization`` record of a bundle trained with ``settings``.

    ``settings["input"]`` (optional): ``intensity`` ``"p99"`` (default) or ``"rank"``
    (:class:`~bids_infantage.models.transforms.RankStandardize` on top of the 99th-percentile
    stack), ``rank_erode_voxels``, ``volume_feature`` ``"log"`` (default) or ``"none"`` (the
    network's size input held at 0), ``augment`` ``"basic"`` or ``"contrast"``
    (see :func:`_augment`), ``csf`` (bool: :func:`paint_csf` with the ventricles of the real
    ``infant-asegs``).
    """
    spec = settings.get("input") or {}
    norm = {"intensity": "p99 in brain mask, clip [0, 1.5]",
            "ratio": "T1w / max(T2w, 0.05), clip [0, 4]",
            "volume_feature": "log(volume_ml / 900)"}
    if spec.get("intensity") == "rank":
        norm["intensity"] = ("rank: quantile among the voxels of the brain mask eroded by "
                             f"{int(spec.get('rank_erode_voxels', 1))} voxel(s), after p99")
        norm["rank_erode_voxels"] = int(spec.get("rank_erode_voxels", 1))
    if spec.get("volume_feature") == "none":
        norm["volume_feature"] = "none"
    return norm


def _batch_tensors(images, vols, idx, channels, rng=None, settings: dict | None = None):
    import torch

    from .transforms import model_input

    spec = (settings or {}).get("input") or {}
    norm = input_normalization(settings or {})
    x = images[idx][:, channels].astype(np.float32)
    v = vols[idx].astype(np.float64)
    if rng is not None:
        x, v = _augment(x, v, rng, contrast=spec.get("augment") == "contrast", channels=channels,
                        ventricles=_JOB_DATA.get("ventricles") if spec.get("csf") else None)
    if norm["intensity"].startswith("rank"):
        x = np.stack([model_input(xi, norm) for xi in x])
    if norm["volume_feature"] == "none":
        s = np.zeros((len(v), 1), np.float32)
    else:
        s = np.asarray([[volume_feature(a)] for a in v], np.float32)
    return torch.from_numpy(x), torch.from_numpy(s)


def build_network(architecture: str, config: str, channels=None):
    """A fresh network for an input configuration.

    ``multitask``: :class:`~bids_infantage.models.nets.multitask_agenet.MultiTaskAgeNet`
    (3D, Park et al. 2026); ``wada``: :class:`~bids_infantage.models.nets.wada2d.WadaLevelNet`
    (five axial levels, Wada et al. 2019); ``wada2019``: their 0-16 / 8-24 month ensemble of
    two of those (:class:`~bids_infantage.models.nets.wada2d.WadaAgeRangeEnsemble`).

    Raises
    ------
    ValueError
        Unknown architecture.
    """
    n_in = len(CONFIGURATIONS[config])
    if architecture == "multitask":
        from .nets.multitask_agenet import MultiTaskAgeNet

        return MultiTaskAgeNet(in_channels=n_in, **({"channels": channels} if channels else {}))
    if architecture == "wada":
        from .nets.wada2d import WadaLevelNet

        return WadaLevelNet(in_channels=n_in)
    if architecture == "wada2019":
        from .nets.wada2d import WadaAgeRangeEnsemble, WadaLevelNet

        return WadaAgeRangeEnsemble(WadaLevelNet(in_channels=n_in), WadaLevelNet(in_channels=n_in))
    raise ValueError(f"unknown architecture {architecture!r}: use multitask, wada or wada2019")


def members_from_states(config: str, states, channels, architecture: str = "multitask") -> list:
    """Ensemble members (eval mode) of a configuration from their trained state dicts."""
    nets = []
    for state in states:
        net = build_network(architecture, config, channels)
        net.load_state_dict(state)
        net.eval()
        nets.append(net)
    return nets


def train_member(data, config: str, seed: int, *, epochs: int, batch_size: int, lr: float,
                 channels, loss_weights, history=None, architecture: str = "multitask",
                 settings: dict | None = None):
    """Train one ensemble member.

    Parameters
    ----------
    data : dict
        From :func:`~bids_infantage.models.dataset.load_cohort`.
    config : str
        Input configuration (key of :data:`CONFIGURATIONS`).
    architecture : {"multitask", "wada", "wada2019"}
        See :func:`build_network`; the segmentation and reconstruction losses apply only to
        networks that have those heads. ``wada2019`` trains a ``wada`` network on the samples
        aged 0-16 months and one on those aged 8-24 months, and returns their ensemble.
    settings : dict, optional
        Training settings; their ``input`` entry selects the model input and augmentation
        (:func:`input_normalization`).

    Returns
    -------
    torch.nn.Module
        Trained network (eval mode).
    """
    import torch
    import torch.nn.functional as F

    if architecture == "wada2019":  # one network per age range (Wada et al. 2019), then blended
        from .nets.wada2d import OLD_RANGE, YOUNG_RANGE, WadaAgeRangeEnsemble

        parts = []
        for k, (lo, hi) in enumerate((YOUNG_RANGE, OLD_RANGE)):
            keep = np.flatnonzero((data["age"] >= lo) & (data["age"] <= hi))
            subset = {key: (v[keep] if isinstance(v, np.ndarray) and len(v) == len(data["age"]) else v)
                      for key, v in data.items()}
            parts.append(train_member(subset, config, seed + 7919 * k, epochs=epochs,
                                      batch_size=batch_size, lr=lr, channels=channels,
                                      loss_weights=loss_weights, history=history,
                                      architecture="wada", settings=settings))
        return WadaAgeRangeEnsemble(*parts).eval()
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    chans = list(CONFIGURATIONS[config])
    net = build_network(architecture, config, channels)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    n = len(data["age"])
    if n == 0:
        raise ValueError(f"no training subjects for {config}")
    batch_size = min(batch_size, n)  # tiny cohorts (CV folds) still give one step per epoch
    steps = epochs * (n // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.15)
    wm = torch.from_numpy(data["wm"].astype(np.float32))[:, None]
    wm_small = F.avg_pool3d(wm, 4)
    ages = torch.from_numpy(data["age"].astype(np.float32))
    step = 0
    for epoch in range(epochs):
        net.train()
        order = rng.permutation(n)
        tot = 0.0
        for b in range(n // batch_size):
            idx = np.sort(order[b * batch_size:(b + 1) * batch_size])
            x, s = _batch_tensors(data["image"], data["volume_ml"], idx, chans, rng, settings)
            out = net(x, s)
            y = ages[idx]
            var = out["log_var"].exp()
            loss = (loss_weights["l1"] * F.l1_loss(out["age"], y)
                    + loss_weights["nll"] * F.gaussian_nll_loss(out["age"], y, var))
            if "seg" in out:
                loss = loss + loss_weights["seg"] * F.binary_cross_entropy_with_logits(
                    out["seg"], wm_small[idx])
            if "recon" in out:
                loss = loss + loss_weights["recon"] * F.mse_loss(out["recon"], F.avg_pool3d(x, 4))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            tot += float(loss.detach())
        msg = f"{config} seed {seed} epoch {epoch + 1}/{epochs} loss {tot / (n // batch_size):.3f}"
        LOGGER.info(msg)
        if history is not None:
            history.append(msg)
    net.eval()
    return net


def predict_members(nets, data, config: str, batch_size: int = 16, shift_voxels: int = 0,
                    settings: dict | None = None, perturb_seed: int | None = None):
    """Raw predictions of each member, averaged over test-time augmentation: the input and
    its left-right mirror image, each also shifted by ``+-shift_voxels`` along every axis
    when ``shift_voxels > 0`` (:func:`~bids_infantage.models.transforms.tta_batch`).

    ``perturb_seed``: each input first goes through the contrast augmentation
    (:func:`_augment` ``contrast=True``) drawn from this seed, the same draws for every
    member (for :func:`calibrate`'s domain-shift term).

    Returns
    -------
    mean : ndarray (M, N) months; var : ndarray (M, N) months^2; feats : ndarray (N, F) of
    member 0 on the unmodified inputs.
    """
    import torch

    from .transforms import tta_batch

    chans = list(CONFIGURATIONS[config])
    n = len(data["volume_ml"])
    if shift_voxels:
        batch_size = max(1, batch_size // 4)  # 14 copies of each input per forward pass
    means, vars_, feats = [], [], []
    with torch.no_grad():
        for k, net in enumerate(nets):
            mu, va = [], []
            for b in range(0, n, batch_size):
                idx = np.arange(b, min(n, b + batch_size))
                if perturb_seed is None:
                    x, s = _batch_tensors(data["image"], data["volume_ml"], idx, chans, None, settings)
                else:
                    rng = np.random.default_rng(perturb_seed + b)
                    pert = dict(settings or {}, input=dict((settings or {}).get("input") or {},
                                                           augment="contrast"))
                    x, s = _batch_tensors(data["image"], data["volume_ml"], idx, chans, rng, pert)
                xs = tta_batch(x, shift_voxels)
                copies = len(xs) // len(idx)
                o = net(xs, s.repeat(copies, 1))
                m = o["age"].reshape(copies, len(idx)).mean(0)
                v = o["log_var"].exp().reshape(copies, len(idx)).mean(0)
                mu.append(m.numpy())
                va.append(v.numpy())
                if k == 0:
                    feats.append(o["features"][:len(idx)].numpy())
            means.append(np.concatenate(mu))
            vars_.append(np.concatenate(va))
    return np.stack(means), np.stack(vars_), np.concatenate(feats)


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

    from .bundle import ModelBundle
    from .dataset import generate_cohort, load_cohort

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
            bundle.networks(config), val, config, dict(settings, tta_shift_voxels=shift),
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
    :func:`~bids_infantage.models.bundle.interval_half_width`.

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


def save_config_weights(nets, path: Path) -> None:
    """All members of one configuration in one safetensors file (``member{k}.<param>``)."""
    from safetensors.torch import save_file

    tensors = {}
    for k, net in enumerate(nets):
        for name, t in net.state_dict().items():
            tensors[f"member{k}.{name}"] = t.contiguous()
    save_file(tensors, str(path), metadata={"members": str(len(nets))})


_JOB_DATA: dict = {}


def _train_job(job):
    """Train one (configuration, member index) in a worker; returns (state_dict, seconds)."""
    import torch

    config, index = job
    torch.set_num_threads(1)
    settings = _JOB_DATA["settings"]
    t0 = time.time()
    history: list[str] = []
    net = train_member(_JOB_DATA["train"], config, seed=1000 * (index + 1) + len(config),
                       epochs=settings["epochs"], batch_size=settings["batch_size"], lr=settings["lr"],
                       channels=settings["channels"], loss_weights=settings["loss_weights"],
                       history=history, settings=settings,
                       architecture=settings.get("architecture", "multitask"))
    return {k: v.clone() for k, v in net.state_dict().items()}, time.time() - t0, history


def member_fingerprint(settings: dict, preprocessing: dict | None,
                       generator: dict | None = None) -> str:
    """sha256 of what a trained member depends on: the training settings (except the number
    of members, which does not change any one member), the preprocessing of the cohort, the
    synthesis atlas it was drawn from (``generator``, from ``generator.json``; None for
    atlas version 1, so that members cached before it was recorded keep their fingerprint)
    and the torch version."""
    import torch

    keys = {k: v for k, v in settings.items()
            if k not in ("members", "n_val", "seed_val", "tta_shift_voxels")}
    record = {"settings": keys, "preprocessing": preprocessing, "torch": torch.__version__}
    if generator and generator.get("atlas_version", 1) != 1:
        record["generator"] = generator
    blob = json.dumps(record, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def save_member(member_dir: Path, config: str, index: int, fingerprint: str, state: dict,
                seconds: float, history: list) -> Path:
    """Cache one trained member (``<config>-member<index>.safetensors``, with its fingerprint,
    training time and loss history in the metadata), so that an interrupted or extended
    training (more ``--members``) resumes instead of retraining."""
    from safetensors.torch import save_file

    member_dir = Path(member_dir)
    member_dir.mkdir(parents=True, exist_ok=True)
    path = member_dir / f"{config}-member{index}.safetensors"
    tmp = path.with_suffix(".tmp")
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp),
              metadata={"fingerprint": fingerprint, "seconds": f"{seconds:.1f}",
                        "history": json.dumps(history)})
    os.replace(tmp, path)
    return path


def load_member(member_dir: Path, config: str, index: int, fingerprint: str):
    """A cached member as ``(state_dict, seconds, history)``, or None when it is missing or
    was trained with other settings (its fingerprint differs)."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = Path(member_dir) / f"{config}-member{index}.safetensors"
    if not path.exists():
        return None
    with safe_open(str(path), "pt") as fh:
        meta = fh.metadata() or {}
    if meta.get("fingerprint") != fingerprint:
        LOGGER.warning("%s was trained with other settings; training it again", path)
        return None
    return load_file(str(path)), float(meta["seconds"]), json.loads(meta["history"])


def ensure_reference(cache: Path, shared: Path) -> Path:
    """``cache/ref.nii.gz``, the model reference mask
    (:func:`~bids_infantage.models.synthesis.build_reference_mask`), built when missing."""
    import SimpleITK as sitk

    from .synthesis import build_reference_mask

    ref_path = Path(cache) / "ref.nii.gz"
    ref_path.parent.mkdir(parents=True, exist_ok=True)
    if not ref_path.exists():
        sitk.WriteImage(build_reference_mask(Path(shared) / "templateflow"), str(ref_path))
    return ref_path


def ensure_generator(cache: Path, shared: Path) -> dict:
    """Reference mask and synthesis atlas in ``cache`` (built from ``shared`` when missing).

    Returns
    -------
    dict
        Keyword arguments of :func:`~bids_infantage.models.dataset.generate_cohort`:
        ``atlas_path``, ``reference_path``, ``masks_tsv``.
    """
    import SimpleITK as sitk

    from .synthesis import ATLAS_VERSION, Atlas, build_atlas

    cache, shared = Path(cache), Path(shared)
    tf_home = shared / "templateflow"
    ref_path = ensure_reference(cache, shared)
    atlas_path = cache / "atlas.npz"
    if atlas_path.exists() and Atlas.saved_version(atlas_path) != ATLAS_VERSION:
        LOGGER.warning("%s: made by an older build_atlas (version %d, now %d); rebuilding it",
                       atlas_path, Atlas.saved_version(atlas_path), ATLAS_VERSION)
        atlas_path.unlink()
    if not atlas_path.exists():
        build_atlas(tf_home, sitk.ReadImage(str(ref_path))).save(atlas_path)
    return dict(atlas_path=atlas_path, reference_path=ref_path,
                masks_tsv=shared / "bcp-brainmasks" / "masks.tsv")


def cohort_dirs(cache: Path, settings: dict) -> tuple[Path, Path]:
    """Folders of the training and validation cohorts in ``cache``: ``train``, ``val`` for the
    template-blend synthesis, ``labels-train``, ``labels-val`` for ``settings["synthesis"]
    == "labels"``."""
    prefix = "labels-" if settings.get("synthesis") == "labels" else ""
    return Path(cache) / f"{prefix}train", Path(cache) / f"{prefix}val"


def ensure_label_fields(cache: Path, shared: Path) -> dict:
    """Reference mask and label fields (:func:`~bids_infantage.models.label_synthesis.
    build_label_fields`) in ``cache``, built from ``shared`` when missing or of another
    version. Returns the keyword arguments of ``generate_label_cohort``."""
    import SimpleITK as sitk

    from .label_synthesis import LABEL_SYNTHESIS_VERSION, build_label_fields

    ref_path = ensure_reference(cache, shared)
    fields_path = Path(cache) / "fields.npz"
    if fields_path.exists() and int(np.load(fields_path)["version"]) != LABEL_SYNTHESIS_VERSION:
        LOGGER.warning("%s: made by label synthesis version %d, now %d; rebuilding it",
                       fields_path, int(np.load(fields_path)["version"]), LABEL_SYNTHESIS_VERSION)
        fields_path.unlink()
    if not fields_path.exists():
        build_label_fields(shared / "templateflow", shared / "infant-asegs",
                           sitk.ReadImage(str(ref_path))).save(fields_path)
    return dict(fields_path=fields_path, reference_path=ref_path,
                masks_tsv=Path(shared) / "bcp-brainmasks" / "masks.tsv")


def build_data(cache: Path, shared: Path, settings: dict, nprocs: int) -> tuple[dict, dict]:
    """Reference, atlas (or label fields) and the synthetic cohorts (cached)."""
    from .dataset import generate_cohort, load_cohort

    strata = settings.get("age_strata") or {}
    train_dir, val_dir = cohort_dirs(cache, settings)
    if settings.get("synthesis") == "labels":
        from .label_synthesis import generate_label_cohort

        kw = dict(ensure_label_fields(cache, shared), nprocs=nprocs)
        val = generate_label_cohort(val_dir, n=settings["n_val"], seed=settings["seed_val"],
                                    strata=strata.get("val"), **kw)
        train = generate_label_cohort(train_dir, n=settings["n_train"],
                                      seed=settings["seed_train"], strata=strata.get("train"), **kw)
        return load_cohort(train), load_cohort(val)
    kw = dict(ensure_generator(cache, shared), nprocs=nprocs)
    val = generate_cohort(val_dir, n=settings["n_val"], seed=settings["seed_val"],
                          strata=strata.get("val"), **kw)
    train = generate_cohort(train_dir, n=settings["n_train"], seed=settings["seed_train"],
                            strata=strata.get("train"), **kw)
    return load_cohort(train), load_cohort(val)


def train_bundle(out_dir: Path, cache: Path, shared: Path, *, configs, settings: dict,
                 nprocs: int = 2, name: str = "infantage-default") -> dict:
    """Train every configuration and write the bundle to ``out_dir``. Returns bundle.json."""
    import torch

    from .dataset import cohort_generator, cohort_preprocessing

    t0 = time.time()
    train, val = build_data(cache, shared, settings, nprocs)
    train_dir = cohort_dirs(cache, settings)[0]
    out_dir.mkdir(parents=True, exist_ok=True)
    log = open(out_dir / "training.log", "a")
    jobs = [(config, i) for config in configs for i in range(settings["members"])]
    _JOB_DATA.update(train=train, settings=settings)
    if (settings.get("input") or {}).get("csf"):  # CSF painting (paint_csf): real ventricles
        import SimpleITK as sitk

        from .synthesis import build_ventricle_atlas

        vent_path = cache / "ventricles.npz"
        if not vent_path.exists():
            np.savez_compressed(vent_path, **build_ventricle_atlas(
                shared / "infant-asegs", sitk.ReadImage(str(cache / "ref.nii.gz"))))
        _JOB_DATA["ventricles"] = np.load(vent_path)["ventricles"]
    tc = time.time()
    architecture = settings.get("architecture", "multitask")
    member_dir = cache / ("members" if architecture == "multitask" else f"members-{architecture}")
    fingerprint = member_fingerprint(settings, cohort_preprocessing(train_dir),
                                     cohort_generator(train_dir))
    done = {job: load_member(member_dir, *job, fingerprint) for job in jobs}
    todo = [job for job in jobs if done[job] is None]
    LOGGER.info("%d members to train, %d from %s", len(todo), len(jobs) - len(todo), member_dir)
    from ..utils.progress import map_with_progress

    # one member per process, 1 thread each; one line with the ETA as each member ends
    trained = map_with_progress(_train_job, todo, nprocs, logger=LOGGER, what="members",
                                describe=lambda job: f"{job[0]} member {job[1]}")
    for job, result in zip(todo, trained):
        save_member(member_dir, *job, fingerprint, *result)
        done[job] = result
    for job in jobs:
        log.write("\n".join(done[job][2]) + "\n")
    states = [done[job][:2] for job in jobs]
    from .synthesis import read_bcp_volumes

    torch.set_num_threads(max(1, nprocs))  # after the fork: OpenMP pools do not survive fork
    nets_by_config, calibrations, seconds = {}, {}, {}
    for config in configs:
        nets = members_from_states(
            config, [st for (cfg, _), (st, _) in zip(jobs, states) if cfg == config],
            settings["channels"], architecture)
        means, vars_, feats, perturbed = validation_predictions(
            nets, val, config, settings,
            perturbed=(settings.get("input") or {}).get("augment") == "contrast")
        cal = calibrate(means, vars_, feats, val["age"], perturbed_means=perturbed)
        nets_by_config[config], calibrations[config] = nets, cal
        seconds[config] = [round(sec, 1) for (cfg, _), (_, sec) in zip(jobs, states) if cfg == config]
        msg = (f"{config}: validation MAE {cal['val_mae_months']:.2f} months "
               f"(uncalibrated {cal['val_mae_uncalibrated_months']:.2f}), "
               f"slope {cal['slope']:.3f}")
        LOGGER.info(msg)
        log.write(msg + "\n")
        log.flush()
    log.write(f"all members trained in {time.time() - tc:.0f} s wall\n")
    log.close()
    vols = read_bcp_volumes(shared / "bcp-brainmasks" / "masks.tsv")
    return write_bundle(
        out_dir, nets_by_config, calibrations, settings=settings, name=name,
        reference_mask=cache / "ref.nii.gz",
        volume_norms={str(k): [float(v.mean()), float(v.std(ddof=1))] for k, v in vols.items()},
        data_provenance=_data_provenance(settings, train_dir),
        seconds_per_member=seconds, seconds=time.time() - t0,
        preprocessing=cohort_preprocessing(train_dir))


def _data_provenance(settings: dict, train_dir: Path) -> dict:
    """``bundle.json`` ``data_provenance``: what the synthetic cohorts were made from."""
    from .dataset import cohort_generator

    generator = cohort_generator(train_dir) or {}
    out = {"templates": "tpl-BMEXInfant cohorts 1-5 (0, 6, 9, 12, 24 months), MIT, "
                        "DBC-Lab/Brain_MRI_Enhancement b47e31f",
           "brain_volumes": "206 BCP brain masks (masks.tsv), MIT"}
    if settings.get("synthesis") == "labels":
        out.update({"label_maps": "infant-asegs: aseg label maps of 12 single infants "
                                  "(0-38 months), Apache-2.0",
                    "synthesis": "bids_infantage.models.label_synthesis",
                    "label_synthesis_version": generator.get("label_synthesis_version")})
    else:
        out.update({"synthesis": "bids_infantage.models.synthesis",
                    "synthesis_atlas_version": generator.get("atlas_version", 1)})
    return out


#: ``bundle.json`` ``architecture`` of each training architecture (ModelBundle.networks)
BUNDLE_ARCHITECTURES = {"multitask": "MultiTaskAgeNet", "wada2019": "WadaAgeRangeEnsemble"}


def _architecture_record(settings: dict) -> dict:
    """``architecture`` and ``architecture_kwargs`` of a bundle trained with ``settings``."""
    architecture = settings.get("architecture", "multitask")
    if architecture == "multitask":
        return {"architecture": "MultiTaskAgeNet",
                "architecture_kwargs": {"channels": settings["channels"]}}
    from .nets.wada2d import load_levels

    return {"architecture": BUNDLE_ARCHITECTURES[architecture],
            "architecture_kwargs": {"levels": load_levels()}}


def write_bundle(out_dir: Path, nets_by_config: dict, calibrations: dict, *, settings: dict,
                 name: str, reference_mask: Path, volume_norms: dict, data_provenance: dict,
                 seconds_per_member: dict | None = None, seconds: float | None = None,
                 preprocessing: dict | None = None) -> dict:
    """Write a model bundle: one safetensors file per configuration, the reference mask and
    ``bundle.json`` (geometry, normalization, calibration, sha256 of every file).

    Parameters
    ----------
    out_dir : Path
        Bundle folder (created).
    nets_by_config : dict of str -> list of MultiTaskAgeNet
        Ensemble members per input configuration.
    calibrations : dict of str -> dict
        From :func:`calibrate`.
    reference_mask : Path
        Reference brain mask (64^3 at 3 mm) that defines the model grid.
    volume_norms : dict of str -> [mean, sd]
        Brain-volume norms (ml) per age (months), for the out-of-range checks.
    data_provenance : dict
        What the members were trained on.
    preprocessing : dict, optional
        Preprocessing parameters of the training inputs (recorded as
        ``training.preprocessing``); default: the current pipeline defaults
        (:func:`~bids_infantage.models.preprocess.preprocessing_settings`).

    Returns
    -------
    dict
        The content of ``bundle.json``.
    """
    import shutil

    import torch

    from .. import __version__
    from .preprocess import preprocessing_settings

    out_dir.mkdir(parents=True, exist_ok=True)
    members = {}
    for config, nets in nets_by_config.items():
        save_config_weights(nets, out_dir / f"{config}.safetensors")
        members[config] = {
            "file": f"{config}.safetensors",
            "members": len(nets),
            "channels": list(CONFIGURATIONS[config]),
            "calibration": calibrations[config],
        }
        if seconds_per_member:
            members[config]["training_seconds_per_member"] = seconds_per_member[config]
    shutil.copy(reference_mask, out_dir / "reference_mask.nii.gz")
    files = {p.name: sha256(p) for p in sorted(out_dir.iterdir())
             if p.suffix in (".safetensors", ".gz")}
    bundle = {
        "name": name,
        "version": __version__,
        **_architecture_record(settings),
        "geometry": {"shape": [64, 64, 64], "spacing_mm": 3.0, "reference": "reference_mask.nii.gz"},
        "normalization": input_normalization(settings),
        "age_range_months": [0.0, 24.0],
        "test_time_augmentation": {"flip_left_right": True,
                                   "shift_voxels": int(settings.get("tta_shift_voxels", 0))},
        "volume_norms_ml": volume_norms,
        "configurations": members,
        "files_sha256": files,
        "training": {
            "settings": settings,
            "data": data_provenance,
            "preprocessing": preprocessing if preprocessing is not None else preprocessing_settings(),
            "seconds": None if seconds is None else round(seconds, 1),
            "torch": torch.__version__,
        },
    }
    (out_dir / "bundle.json").write_text(json.dumps(bundle, indent=1))
    return bundle


def main(argv=None) -> int:
    """Console script ``bids-infantage-train``."""
    from ..utils.data import data_path

    parser = argparse.ArgumentParser(
        prog="bids-infantage-train",
        description="Reproduce the default model bundle from the shared templates and masks.",
    )
    parser.add_argument("--shared", type=Path, default=Path("../shared"),
                        help="folder with templateflow/ and bcp-brainmasks/ (default ../shared)")
    parser.add_argument("--cache-dir", type=Path, default=Path("training-cache"))
    parser.add_argument("--out", type=Path, default=None,
                        help="bundle folder (default: the package's data/models/infantage-default, "
                             "or data/models/wada2019 with --architecture wada2019)")
    parser.add_argument("--architecture", choices=["multitask", "wada2019"], default="multitask",
                        help="multitask: the default 3D multi-task CNN (after Park et al. 2026); "
                             "wada2019: five axial levels, a 2D CNN per level and contrast, "
                             "0-16 / 8-24 month ensemble (Wada et al. 2019), selectable with "
                             "--model wada2019")
    parser.add_argument("--configs", nargs="+", default=list(CONFIGURATIONS),
                        choices=list(CONFIGURATIONS))
    parser.add_argument("--nprocs", type=int, default=os.cpu_count() or 1)
    for key in ("n_train", "n_val", "epochs", "members"):
        parser.add_argument(f"--{key.replace('_', '-')}", type=int, default=None,
                            help=f"default {DEFAULTS[key]}")
    parser.add_argument("--recipe", choices=["basic", "transfer", "labels"], default="basic",
                        help="model input and augmentation: basic (99th-percentile intensities, "
                             "brain-volume input), transfer (rank intensities, no volume input, "
                             "contrast augmentation; issue #14) or labels (label-driven "
                             "synthesis from the infant-asegs anatomy, no volume input, "
                             "contrast augmentation)")
    parser.add_argument("--recalibrate-interval", action="store_true",
                        help="do not train: add the domain-shift term to the intervals of the "
                             "bundle in --out (recalibrate_interval; --n-val samples)")
    parser.add_argument("--add-template-term", type=Path, default=None, metavar="LOTO_JSON",
                        help="do not train: add the between-template term measured by "
                             "leave-one-template-out (benchmarks/validate_model.py --loto-json) to "
                             "the intervals of the bundle in --out (add_template_term)")
    args = parser.parse_args(argv)
    name = "infantage-default" if args.architecture == "multitask" else "wada2019"
    if args.out is None:
        args.out = data_path("models") / name
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.add_template_term is not None:
        print(json.dumps(add_template_term(args.out, args.add_template_term), indent=1))
        return 0
    if args.recalibrate_interval:
        report = recalibrate_interval(args.out, args.cache_dir, args.shared,
                                      n_val=args.n_val or DEFAULTS["n_val"], nprocs=args.nprocs)
        print(json.dumps(report, indent=1))
        return 0
    settings = dict(DEFAULTS)
    if args.recipe == "transfer":
        settings.update(TRANSFER_RECIPE)
    elif args.recipe == "labels":
        settings.update(LABEL_RECIPE)
    if args.architecture != "multitask":
        settings["architecture"] = args.architecture
    settings.update({k: getattr(args, k) for k in ("n_train", "n_val", "epochs", "members")
                     if getattr(args, k) is not None})
    bundle = train_bundle(args.out, args.cache_dir, args.shared, configs=args.configs,
                          settings=settings, nprocs=args.nprocs, name=name)
    print(json.dumps({c: v["calibration"]["val_mae_months"]
                      for c, v in bundle["configurations"].items()}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
