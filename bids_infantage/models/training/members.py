"""Ensemble members: building, training and predicting networks, their weights, and the member
cache (``--cache-dir/members``, one file per member with a fingerprint of its settings).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from pathlib import Path

import numpy as np

from ..transforms import CONFIGURATIONS
from .augmentation import _JOB_DATA, _batch_tensors
from .recipes import configuration_settings

LOGGER = logging.getLogger("bids_infantage.training")


def build_network(architecture: str, config: str, channels=None, pooling: str = "mean"):
    """A fresh network for an input configuration.

    ``multitask``: :class:`~bids_infantage.models.nets.multitask_agenet.MultiTaskAgeNet`
    (3D, Park et al. 2026; ``pooling`` as there); ``wada``: :class:`~bids_infantage.models.nets.wada2d.WadaLevelNet`
    (five axial levels, Wada et al. 2019); ``wada2019``: their 0-16 / 8-24 month ensemble of
    two of those (:class:`~bids_infantage.models.nets.wada2d.WadaAgeRangeEnsemble`).

    Raises
    ------
    ValueError
        Unknown architecture.
    """
    n_in = len(CONFIGURATIONS[config])
    if architecture == "multitask":
        from ..nets.multitask_agenet import MultiTaskAgeNet

        return MultiTaskAgeNet(in_channels=n_in, pooling=pooling,
                               **({"channels": channels} if channels else {}))
    if architecture == "wada":
        from ..nets.wada2d import WadaLevelNet

        return WadaLevelNet(in_channels=n_in)
    if architecture == "wada2019":
        from ..nets.wada2d import WadaAgeRangeEnsemble, WadaLevelNet

        return WadaAgeRangeEnsemble(WadaLevelNet(in_channels=n_in), WadaLevelNet(in_channels=n_in))
    raise ValueError(f"unknown architecture {architecture!r}: use multitask, wada or wada2019")


def members_from_states(config: str, states, channels, architecture: str = "multitask",
                        pooling: str = "mean") -> list:
    """Ensemble members (eval mode) of a configuration from their trained state dicts."""
    nets = []
    for state in states:
        net = build_network(architecture, config, channels, pooling)
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
        from ..nets.wada2d import OLD_RANGE, YOUNG_RANGE, WadaAgeRangeEnsemble

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
    net = build_network(architecture, config, channels, (settings or {}).get("pooling", "mean"))
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

    from ..transforms import tta_batch

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


def save_config_weights(nets, path: Path) -> None:
    """All members of one configuration in one safetensors file (``member{k}.<param>``)."""
    from safetensors.torch import save_file

    tensors = {}
    for k, net in enumerate(nets):
        for name, t in net.state_dict().items():
            tensors[f"member{k}.{name}"] = t.contiguous()
    save_file(tensors, str(path), metadata={"members": str(len(nets))})


def _train_job(job):
    """Train one (configuration, member index) in a worker; returns (state_dict, seconds)."""
    import torch

    config, index = job
    torch.set_num_threads(1)
    settings = configuration_settings(_JOB_DATA["settings"], config)
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
    synthesis it was drawn from (``generator``, from ``generator.json``: the synthesis atlas
    version, or the label or milestone synthesis and its version; None or atlas version 1
    leave it out, so that members cached before it was recorded keep their fingerprint) and
    the torch version."""
    import torch

    keys = {k: v for k, v in settings.items()
            if k not in ("members", "n_val", "seed_val", "tta_shift_voxels")}
    record = {"settings": keys, "preprocessing": preprocessing, "torch": torch.__version__}
    if generator and (generator.get("atlas_version", 1) != 1 or "generator" in generator):
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
