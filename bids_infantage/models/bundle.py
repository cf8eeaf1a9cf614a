"""Model bundles: safetensors weights + ``bundle.json`` + the reference brain mask.

A bundle is a folder. ``--model NAME`` looks in ``bids_infantage/data/models/NAME``;
``--model PATH`` takes a folder with ``bundle.json``. Loading requires ``files_sha256`` to
list every file the bundle loads (weights and reference mask), checks each sha256 and the
tensor shapes, and fails with :class:`~bids_infantage.utils.errors.ModelBundleError` naming
the file on a mismatch. The packaged default is also checked against
:data:`DEFAULT_BUNDLE_SHA256`, pinned here; another bundle never carries the default's name.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..utils.checksums import sha256
from ..utils.errors import ModelBundleError
from ..utils.numbers import format_against, format_pair
from .transforms import CONFIGURATIONS, model_input, tta_batch, volume_feature

DEFAULT_MODEL = "infantage-default"
#: sha256 of the packaged default's ``bundle.json`` (which holds the sha256 of its weights):
#: update it together with the bundle when the default model is retrained
DEFAULT_BUNDLE_SHA256 = "335a5b3a4016621ef0cd9b97c62e2bf968e0da93c529882d418db565afed8339"
#: |z| of brain volume against the BCP norm at the predicted age beyond which a flag is raised
VOLUME_Z_MAX = 2.5
#: Months beyond the model's age range (predicted or chronological age) that raise the
#: out-of-range flag
AGE_RANGE_MARGIN_MONTHS = 2.0


#: Age (months) beyond which a T1w-only estimate is flagged: white matter is T1w-bright by
#: about 8-12 months, after which T1w changes little (Barkovich et al., Radiology 1988); such
#: an interval's upper bound is raised to the top of the model's age range
T1W_ONLY_RESOLVES_MONTHS = 12.0


def shift_sd(age_months: float, bands) -> float:
    """Domain-shift SD (months) at a predicted age from a calibration's ``shift_sd_bands``
    ([[low, high, sd], ...] by predicted age, months; ages outside take the nearest band; 0
    when absent). See :func:`~bids_infantage.models.training.calibrate`."""
    if not bands:
        return 0.0
    for lo, hi, sd in bands:
        if lo <= age_months < hi:
            return float(sd)
    return float(bands[0][2] if age_months < bands[0][0] else bands[-1][2])


def interval_half_width(cal: dict, sd_months: float) -> float:
    """Half-width (months) of a calibrated prediction interval.

    ``interval_z * sd`` (same-family validation with the domain-shift term, see
    :func:`~bids_infantage.models.training.calibrate`). A calibration with
    ``template_sd_months`` (the between-template error measured by leave-one-template-out,
    :func:`~bids_infantage.models.training.template_term`) adds it as a second, independent
    error: ``hypot(interval_z * sd, q * template_sd)``, where ``q`` is the standard normal
    quantile of the interval's coverage (1.645 for 90%).
    """
    from statistics import NormalDist

    half = float(cal["interval_z"]) * float(sd_months)
    template_sd = float(cal.get("template_sd_months") or 0.0)
    if template_sd > 0.0:
        q = NormalDist().inv_cdf(0.5 + float(cal["interval_coverage"]) / 2.0)
        half = float(np.hypot(half, q * template_sd))
    return half


def outside_age_range(age_months: float, age_range) -> bool:
    """Whether an age (months, predicted or chronological) lies more than
    :data:`AGE_RANGE_MARGIN_MONTHS` outside a model's ``age_range`` ([low, high], months)."""
    lo, hi = age_range
    return age_months < lo - AGE_RANGE_MARGIN_MONTHS or age_months > hi + AGE_RANGE_MARGIN_MONTHS


def resolve_bundle(name_or_path: str | Path | None) -> Path:
    """Folder of a bundle given its name (package data) or a path.

    Raises
    ------
    ModelBundleError
        When no ``bundle.json`` is found.
    """
    from ..utils.data import data_path

    candidate = Path(name_or_path or DEFAULT_MODEL)
    for folder in (candidate, data_path("models") / str(name_or_path or DEFAULT_MODEL)):
        if (folder / "bundle.json").is_file():
            return folder.resolve()
    raise ModelBundleError(
        f"model '{name_or_path}': no bundle.json found (looked in {candidate} and the package's "
        "data/models); pass --model with a bundle folder made by bids-infantage-train."
    )


class ModelBundle:
    """A loaded model bundle.

    Parameters
    ----------
    folder : Path
        Bundle folder (see module docstring).
    verify : bool
        Check sha256 of every file (default True).

    Attributes
    ----------
    meta : dict
        ``bundle.json``.
    sha256 : str
        sha256 of ``bundle.json`` (identifies the model in outputs).
    """

    def __init__(self, folder: Path, verify: bool = True) -> None:
        self.folder = Path(folder)
        meta_path = self.folder / "bundle.json"
        try:
            self.meta = json.loads(meta_path.read_text())
        except (OSError, ValueError) as exc:
            raise ModelBundleError(f"{meta_path}: cannot be read ({exc}); reinstall the model.") from None
        self.sha256 = sha256(meta_path)
        self.is_default = self.sha256 == DEFAULT_BUNDLE_SHA256
        if verify:
            self._verify(meta_path)
        self._nets: dict = {}

    def _verify(self, meta_path: Path) -> None:
        """Check the bundle's integrity (see the module docstring).

        Raises
        ------
        ModelBundleError
            The packaged default differs from :data:`DEFAULT_BUNDLE_SHA256`; ``files_sha256``
            is missing or does not list a file the bundle loads; a file is missing or its
            sha256 differs.
        """
        from ..utils.data import data_path

        packaged = (data_path("models") / DEFAULT_MODEL).resolve()
        if self.folder.resolve() == packaged and not self.is_default:
            raise ModelBundleError(
                f"{meta_path}: the packaged default model was modified (bundle.json sha256 "
                f"{self.sha256[:12]}, expected {DEFAULT_BUNDLE_SHA256[:12]}); reinstall "
                "bids-infantage, or train into another folder (--out) and pass it with --model.")
        listed = self.meta.get("files_sha256")
        if not isinstance(listed, dict) or not listed:
            raise ModelBundleError(
                f"{meta_path}: no files_sha256 (the sha256 of every file the bundle loads); "
                "use a bundle written by bids-infantage-train.")
        needed = [self.meta.get("geometry", {}).get("reference")]
        needed += [c.get("file") for c in self.meta.get("configurations", {}).values()]
        unlisted = sorted(n for n in needed if n and n not in listed)
        if unlisted:
            raise ModelBundleError(
                f"{meta_path}: files_sha256 does not list {', '.join(unlisted)}; use a bundle "
                "written by bids-infantage-train.")
        for name, digest in listed.items():
            path = self.folder / name
            if not path.is_file():
                raise ModelBundleError(f"{path}: missing from the model bundle; reinstall it.")
            if sha256(path) != digest:
                raise ModelBundleError(
                    f"{path}: sha256 does not match bundle.json (corrupted or replaced); "
                    "reinstall the package or retrain with bids-infantage-train."
                )

    @property
    def name(self) -> str:
        """The bundle's name as written in the outputs: ``bundle.json``'s ``name``, except that
        a bundle calling itself :data:`DEFAULT_MODEL` without being it (another sha256) is
        named ``custom-<sha256[:12]>``."""
        name = self.meta["name"]
        if name == DEFAULT_MODEL and not self.is_default:
            return f"custom-{self.sha256[:12]}"
        return name

    @property
    def reference_mask_path(self) -> Path:
        return self.folder / self.meta["geometry"]["reference"]

    def reference_mask(self):
        """Reference brain mask (SimpleITK uint8 image, 64^3 at 3 mm)."""
        import SimpleITK as sitk

        return sitk.ReadImage(str(self.reference_mask_path), sitk.sitkUInt8)

    @staticmethod
    def _can_serve(config: str, has_t1w: bool, has_t2w: bool) -> bool:
        chans = CONFIGURATIONS[config]
        needs_t1 = 0 in chans or 2 in chans
        needs_t2 = 1 in chans or 2 in chans
        return (has_t1w or not needs_t1) and (has_t2w or not needs_t2)

    def choose_configuration(self, has_t1w: bool, has_t2w: bool, requested: str = "auto") -> str:
        """Input configuration for the available modalities.

        ``auto``: among the configurations the session's images can feed, the one with the
        lowest validation MAE recorded in ``bundle.json`` (with T1w only: ``t1w``; with T2w
        only: ``t2w``).

        Raises
        ------
        ModelBundleError
            The requested configuration needs a missing modality or is not in the bundle.
        """
        available = self.meta["configurations"]
        if requested == "auto":
            usable = [c for c in available if self._can_serve(c, has_t1w, has_t2w)]
            if not usable:
                raise ModelBundleError(f"model {self.name} has no configuration for the available images")
            return min(usable, key=lambda c: available[c]["calibration"]["val_mae_months"])
        if not self._can_serve(requested, has_t1w, has_t2w):
            chans = CONFIGURATIONS[requested]
            needs = "T1w and T2w" if (2 in chans or {0, 1} <= set(chans)) else ("T1w" if 0 in chans else "T2w")
            raise ModelBundleError(
                f"--modality {requested} needs {needs}, which this session lacks; use --modality auto."
            )
        if requested not in available:
            raise ModelBundleError(f"model {self.name} has no '{requested}' configuration")
        return requested

    def networks(self, config: str) -> list:
        """Ensemble members of a configuration (eval mode), loaded once per process."""
        if config in self._nets:
            return self._nets[config]
        from safetensors.torch import load_file

        spec = self.meta["configurations"][config]
        path = self.folder / spec["file"]
        tensors = load_file(str(path))
        nets = []
        architecture = self.meta.get("architecture", "MultiTaskAgeNet")
        for k in range(spec["members"]):
            net = self._network(architecture, len(spec["channels"]))
            prefix = f"member{k}."
            state = {n[len(prefix):]: t for n, t in tensors.items() if n.startswith(prefix)}
            try:
                net.load_state_dict(state, strict=True)
            except RuntimeError as exc:
                raise ModelBundleError(
                    f"{path}: weights do not fit {architecture} ({str(exc).splitlines()[0]}); "
                    "the bundle was made by another version: retrain it."
                ) from None
            net.eval()
            for p in net.parameters():
                p.requires_grad_(False)
            nets.append(net)
        self._nets[config] = nets
        return nets

    def _network(self, architecture: str, in_channels: int):
        """An untrained network of the bundle's architecture (``bundle.json``
        ``architecture`` and ``architecture_kwargs``).

        Raises
        ------
        ModelBundleError
            Unknown architecture.
        """
        kwargs = self.meta.get("architecture_kwargs", {})
        if architecture == "MultiTaskAgeNet":
            from .nets.multitask_agenet import MultiTaskAgeNet

            return MultiTaskAgeNet(in_channels=in_channels, **kwargs)
        if architecture == "WadaAgeRangeEnsemble":
            from .nets.wada2d import WadaAgeRangeEnsemble, WadaLevelNet

            return WadaAgeRangeEnsemble(WadaLevelNet(in_channels=in_channels, **kwargs),
                                        WadaLevelNet(in_channels=in_channels, **kwargs))
        raise ModelBundleError(f"{self.folder / 'bundle.json'}: unknown architecture "
                               f"{architecture!r}; use a bundle written by bids-infantage-train.")

    def volume_norm(self, age_months: float) -> tuple[float, float]:
        """BCP brain-volume mean and SD (ml) at an age (linear interpolation)."""
        norms = sorted((float(k), v) for k, v in self.meta["volume_norms_ml"].items())
        ages = [a for a, _ in norms]
        return (float(np.interp(age_months, ages, [v[0] for _, v in norms])),
                float(np.interp(age_months, ages, [v[1] for _, v in norms])))

    def predict(self, image: np.ndarray, volume_ml: float, config: str, *, saliency: bool = True,
                device: str = "cpu") -> dict:
        """Brain age of one session.

        Each member's output is averaged over the test-time augmentation recorded in
        ``bundle.json`` (``test_time_augmentation``: the input and its left-right mirror, each
        also shifted by ``+-shift_voxels`` along every axis; see
        :func:`~bids_infantage.models.transforms.tta_batch`), as in the calibration.

        Parameters
        ----------
        image : ndarray, shape (3, 64, 64, 64)
            Standardized stack (T1w, T2w, ratio) from
            :func:`~bids_infantage.models.preprocess.to_reference_space`; the bundle's
            ``normalization`` turns it into its input
            (:func:`~bids_infantage.models.transforms.model_input`).
        volume_ml : float
            Brain volume in ml (native space): a network input unless the bundle's
            ``normalization.volume_feature`` is ``"none"``; always used by the volume checks.
        config : str
            Input configuration.
        saliency : bool
            Also compute a Grad-CAM map (Selvaraju et al., ICCV 2017) of member 0.

        Returns
        -------
        dict
            ``age``, ``sd``, ``lower``, ``upper`` (months, calibrated: ``age -+``
            :func:`interval_half_width`, except that a T1w-only interval reaching past
            :data:`T1W_ONLY_RESOLVES_MONTHS` has its upper bound raised to the top of
            ``age_range_months``; ``sd`` holds neither that nor the between-template term),
            ``members`` (raw
            member means), ``feature_distance``, ``volume_z``, ``flags`` (list of str),
            ``out_of_range`` (bool), ``saliency`` (ndarray (64, 64, 64) in [0, 1] or None),
            ``age_range_months`` ([low, high] of the model); for the Wada et al. (2019)
            ensemble also ``age_ranges``: ``young_months`` and ``old_months`` (raw member means
            of the 0-16 and 8-24 month networks) and ``weight_old`` (0-1). The saliency map is
            Grad-CAM for the 3D network, gradient saliency for the 2D ensemble.
        """
        import torch

        spec = self.meta["configurations"][config]
        cal = spec["calibration"]
        nets = self.networks(config)
        dev = torch.device(device)
        norm = self.meta.get("normalization", {})
        x = torch.from_numpy(np.ascontiguousarray(
            model_input(np.asarray(image)[spec["channels"]], norm), dtype=np.float32))[None].to(dev)
        size = 0.0 if norm.get("volume_feature") == "none" else volume_feature(volume_ml)
        s = torch.tensor([[size]], dtype=torch.float32, device=dev)
        means, variances = [], []
        ranges = []  # Wada et al. (2019) ensembles: (young, old, weight of old) per member
        feats = None
        # the test-time augmentation the calibration was made with (older bundles: mirror only)
        xs = tta_batch(x, self.meta.get("test_time_augmentation", {}).get("shift_voxels", 0))
        with torch.no_grad():
            for k, net in enumerate(nets):
                net.to(dev)
                o = net(xs, s.expand(len(xs), 1))
                means.append(float(o["age"].mean()))
                variances.append(float(o["log_var"].exp().mean()))
                if "age_young" in o:
                    ranges.append([float(o[key].mean()) for key in ("age_young", "age_old", "weight_old")])
                if k == 0:
                    feats = o["features"][0].cpu().numpy()  # row 0: the unmodified input
        means_a = np.asarray(means)
        raw = float(means_a.mean())
        slope, intercept = cal["slope"], cal["intercept"]
        age = intercept + slope * raw
        sd = float(np.sqrt(np.mean(variances) + means_a.var()) * abs(slope))
        # domain-shift term of bundles calibrated on perturbed validation (training.calibrate)
        sd = float(np.hypot(sd, shift_sd(age, cal.get("shift_sd_bands"))))
        half = interval_half_width(cal, sd)
        mu = np.asarray(cal["feature_mean"])
        icov = np.asarray(cal["feature_icov"])
        dist = float(np.sqrt((feats - mu) @ icov @ (feats - mu)))
        lo_age, hi_age = self.meta["age_range_months"]
        v_mean, v_sd = self.volume_norm(float(np.clip(age, lo_age, hi_age)))
        volume_z = (volume_ml - v_mean) / v_sd
        v_hi = max(m + 3 * s_ for m, s_ in self.meta["volume_norms_ml"].values())
        v_lo = min(m - 3 * s_ for m, s_ in self.meta["volume_norms_ml"].values())
        flags, oor = [], False
        if dist > cal["feature_distance_threshold"]:
            flags.append("image unlike the training data (feature distance %s > %s)"
                         % format_pair(dist, cal["feature_distance_threshold"], 1))
            oor = True
        if outside_age_range(age, (lo_age, hi_age)):
            flags.append(f"predicted age {age:.1f} months outside the model range {lo_age:g}-{hi_age:g}")
            oor = True
        if volume_ml > v_hi or volume_ml < v_lo:
            flags.append(f"brain volume {volume_ml:.0f} ml outside the 0-24 month norms "
                         f"({v_lo:.0f}-{v_hi:.0f} ml)")
            oor = True
        if volume_z > VOLUME_Z_MAX:
            z_text = format_against(volume_z, VOLUME_Z_MAX, 1, sign=True)
            flags.append(f"brain volume {volume_ml:.0f} ml is {z_text} SD above the norm at the "
                         f"predicted age: an older child, or macrocephaly")
            oor = True
        elif volume_z < -VOLUME_Z_MAX:
            z_text = format_against(volume_z, -VOLUME_Z_MAX, 1, sign=True)
            flags.append(f"brain volume {volume_ml:.0f} ml is {z_text} SD below the norm at the "
                         "predicted age: check the brain mask")
        lower, upper = float(age - half), float(age + half)
        if CONFIGURATIONS[config] == (0,) and upper > T1W_ONLY_RESOLVES_MONTHS:
            # T1w alone cannot tell a 12-month brain from a 24-month one: the interval's upper
            # bound becomes the top of the model's range instead of a confident number
            upper = max(upper, float(hi_age))
            flags.append(f"T1w only: T1w myelination contrast is nearly complete by about "
                         f"{T1W_ONLY_RESOLVES_MONTHS:g} months, so older ages are poorly resolved "
                         f"and the interval extends to {upper:.0f} months (add a T2w)")
        if sd > cal["sd_threshold_months"]:
            flags.append("ensemble uncertainty high (SD %s > %s months)"
                         % format_pair(sd, cal["sd_threshold_months"], 1))
        if not saliency:
            sal = None
        elif hasattr(nets[0], "stage3"):
            sal = self._grad_cam(nets[0], x, s)
        else:
            sal = self._gradient_saliency(nets[0], x, s)
        if ranges:
            young, old, weight = np.asarray(ranges).mean(0)
            extra = {"age_ranges": {"young_months": float(young), "old_months": float(old),
                                    "weight_old": float(weight)}}
        else:
            extra = {}
        return {**extra,
            "age": float(age), "sd": sd, "lower": lower, "upper": upper,
            "coverage": cal["interval_coverage"], "members": means, "raw_age": raw,
            "feature_distance": dist, "volume_z": float(volume_z), "flags": flags,
            "out_of_range": oor, "saliency": sal, "age_range_months": [lo_age, hi_age],
        }

    @staticmethod
    def _gradient_saliency(net, x, s) -> np.ndarray:
        """Gradient saliency (Simonyan et al., ICLR 2014 workshop): |d age / d input| summed
        over channels, smoothed (Gaussian, sigma 1 voxel) and scaled to [0, 1]; (64, 64, 64).
        For networks without a 3D feature stage to take Grad-CAM on (the five-level 2D
        ensemble of Wada et al. 2019, whose map is non-zero on its five slabs only)."""
        import torch
        from scipy import ndimage

        with torch.enable_grad():
            xg = x.clone().requires_grad_(True)
            net(xg, s)["age"].sum().backward()
        grad = xg.grad[0].abs().sum(0).cpu().numpy()
        grad = ndimage.gaussian_filter(grad, 1.0) * (x[0].abs().sum(0).cpu().numpy() > 0)
        peak = grad.max()
        return (grad / peak).astype(np.float32) if peak > 0 else grad.astype(np.float32)

    @staticmethod
    def _grad_cam(net, x, s) -> np.ndarray:
        """Grad-CAM of the age output on the third encoder stage (8^3), upsampled to 64^3."""
        import torch
        import torch.nn.functional as F

        acts = {}

        def hook(_module, _inp, out):
            out.retain_grad()
            acts["a"] = out

        handle = net.stage3.register_forward_hook(hook)
        try:
            with torch.enable_grad():
                xg = x.clone().requires_grad_(True)
                out = net(xg, s)
                out["age"].sum().backward()
        finally:
            handle.remove()
        a = acts["a"]
        weights = a.grad.mean(dim=(2, 3, 4), keepdim=True)
        cam = F.relu((weights * a).sum(1, keepdim=True))
        cam = F.interpolate(cam, size=x.shape[2:], mode="trilinear", align_corners=False)[0, 0]
        cam = cam.detach().cpu().numpy() * (x[0].abs().sum(0).cpu().numpy() > 0)
        peak = cam.max()
        return (cam / peak).astype(np.float32) if peak > 0 else cam.astype(np.float32)


@lru_cache(maxsize=4)
def load_bundle(name_or_path: str | None = None, verify: bool = True) -> ModelBundle:
    """Load (once per process) the bundle named or at the given path."""
    return ModelBundle(resolve_bundle(name_or_path), verify=verify)
