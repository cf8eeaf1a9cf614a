"""A loaded model bundle (:class:`ModelBundle`): its configurations and networks, and the
prediction of one session with its calibrated interval and QC flags.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ...utils.checksums import sha256
from ...utils.errors import ModelBundleError
from ...utils.numbers import format_against, format_pair
from ..transforms import CONFIGURATIONS, model_input, reads_both_images, tta_batch, volume_feature
from .intervals import interval_half_width, outside_age_range, shift_sd, t1w_only_upper
from .resolve import DEFAULT_MODEL, is_default_bundle, verify_bundle
from .saliency import grad_cam, gradient_saliency

#: |z| of brain volume against the BCP norm at the predicted age beyond which a flag is raised
VOLUME_Z_MAX = 2.5


class ModelBundle:
    """A loaded model bundle.

    Parameters
    ----------
    folder : Path
        Bundle folder (see :mod:`bids_infantage.models.bundle`).
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
        self.is_default = is_default_bundle(self.sha256)
        if verify:
            verify_bundle(self.folder, self.meta, meta_path, self.sha256)
        self._nets: dict = {}

    @property
    def name(self) -> str:
        """The bundle's name as written in the outputs: ``bundle.json``'s ``name``, except that
        a bundle calling itself :data:`~bids_infantage.models.bundle.resolve.DEFAULT_MODEL`
        without being it (another sha256) is named ``custom-<sha256[:12]>``."""
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

    def choose_configuration(self, has_t1w: bool, has_t2w: bool, requested: str = "auto", *,
                             same_brain: bool = True) -> str:
        """Input configuration for the available modalities.

        ``auto``: among the configurations the session's images can feed, the one with the
        lowest validation MAE recorded in ``bundle.json`` (with T1w only: ``t1w``; with T2w
        only: ``t2w``). With both images but ``same_brain=False`` (the T1w and T2w failed the
        pipeline's same-brain check after registration,
        :func:`~bids_infantage.image.registration.edge_correlation` below
        :data:`~bids_infantage.image.registration.SAME_BRAIN_MIN`), only the configurations
        that read one image are candidates: a ratio or a two-channel input of images that are
        not in register (another session's image, or a pair a rigid transform cannot align)
        measures their misregistration, not myelination (a bundle with no such configuration
        keeps its choice). A requested configuration is used as asked.

        Raises
        ------
        ModelBundleError
            The requested configuration needs a missing modality or is not in the bundle.
        """
        available = self.meta["configurations"]
        if requested == "auto":
            usable = [c for c in available if self._can_serve(c, has_t1w, has_t2w)]
            if has_t1w and has_t2w and not same_brain:  # a bundle without one keeps both images
                usable = [c for c in usable if not reads_both_images(c)] or usable
            if not usable:
                raise ModelBundleError(f"model {self.name} has no configuration for the available images")
            return min(usable, key=lambda c: available[c]["calibration"]["val_mae_months"])
        if not self._can_serve(requested, has_t1w, has_t2w):
            chans = CONFIGURATIONS[requested]
            needs = "T1w and T2w" if reads_both_images(requested) else ("T1w" if 0 in chans else "T2w")
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
            from ..nets.multitask_agenet import MultiTaskAgeNet

            return MultiTaskAgeNet(in_channels=in_channels, **kwargs)
        if architecture == "WadaAgeRangeEnsemble":
            from ..nets.wada2d import WadaAgeRangeEnsemble, WadaLevelNet

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
            :func:`~bids_infantage.models.bundle.intervals.interval_half_width`, except that a
            T1w-only interval reaching past
            :data:`~bids_infantage.models.bundle.intervals.T1W_ONLY_RESOLVES_MONTHS` has its
            upper bound raised to the top of
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
        upper, t1w_only_flag = t1w_only_upper(CONFIGURATIONS[config], upper, hi_age)
        if t1w_only_flag is not None:
            flags.append(t1w_only_flag)
        if sd > cal["sd_threshold_months"]:
            flags.append("ensemble uncertainty high (SD %s > %s months)"
                         % format_pair(sd, cal["sd_threshold_months"], 1))
        if not saliency:
            sal = None
        elif hasattr(nets[0], "stage3"):
            sal = grad_cam(nets[0], x, s)
        else:
            sal = gradient_saliency(nets[0], x, s)
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
