"""Multi-task 3D CNN for infant brain age, after Park, Choi & Gho (JMRI 2026)."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["MultiTaskAgeNet"]


def _block(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv3d(cin, cout, 3, stride=stride, padding=1, bias=False),
        nn.InstanceNorm3d(cout, affine=True),
        nn.LeakyReLU(0.1, inplace=True),
    )


class MultiTaskAgeNet(nn.Module):
    """3D CNN with multi-scale features and three heads: age, white-matter segmentation and
    image reconstruction (Park, Choi & Gho, JMRI 2026: multi-task learning with multi-scale
    features gave their best infant brain-age model).

    The encoder has four stride-2 stages. Global averages of the last three stages
    (multi-scale features) and the brain-size scalar (log brain volume, which affine
    normalization removes from the image) feed a small MLP that predicts the age mean and
    log-variance (Gaussian likelihood: heteroscedastic uncertainty). The segmentation head
    predicts white matter at 1/4 resolution from stage 2; the reconstruction head predicts
    the input at 1/4 resolution from stage 3 (auxiliary tasks, training only).

    Args:
        in_channels: number of input images (1-3: T1w, T2w, ratio).
        channels: feature channels of the four encoder stages.
        n_scalars: number of scalar inputs (1: brain volume feature).
        hidden: width of the age MLP.
        dropout: dropout before the age output.
        age_scale: ages (months) are predicted as ``age_scale * output``.
        pooling: ``"mean"`` (global average of each stage's features) or ``"mean+max"``
            (global average and global maximum, twice the features). Each stage ends in
            instance normalization, after which a feature's global average depends only on the
            shape of its distribution; the maximum also says how strongly it fires, which a
            weak single-contrast signal (T1w or T2w alone) needs (issue #14).

    Inputs:
        x: (B, in_channels, 64, 64, 64) standardized images in reference space.
        scalars: (B, n_scalars).

    Returns:
        dict with ``age`` (B,) months, ``log_var`` (B,) log variance in months^2,
        ``features`` (B, F) pooled multi-scale features, ``seg`` (B, 1, 16, 16, 16) WM logits,
        ``recon`` (B, in_channels, 16, 16, 16).

    Examples:
        >>> net = MultiTaskAgeNet(in_channels=1)
        >>> out = net(torch.zeros(2, 1, 64, 64, 64), torch.zeros(2, 1))
        >>> out["age"].shape, out["seg"].shape
        (torch.Size([2]), torch.Size([2, 1, 16, 16, 16]))
    """

    def __init__(
        self,
        in_channels: int,
        channels: Sequence[int] = (12, 24, 48, 64),
        n_scalars: int = 1,
        hidden: int = 64,
        dropout: float = 0.1,
        age_scale: float = 24.0,
        pooling: str = "mean",
    ) -> None:
        super().__init__()
        if pooling not in ("mean", "mean+max"):
            raise ValueError(f"pooling {pooling!r}: use 'mean' or 'mean+max'")
        self.pooling = pooling
        c1, c2, c3, c4 = channels
        self.age_scale = age_scale
        self.stage1 = _block(in_channels, c1, 2)  # 32^3
        self.stage2 = nn.Sequential(_block(c1, c2, 2), _block(c2, c2, 1))  # 16^3
        self.stage3 = nn.Sequential(_block(c2, c3, 2), _block(c3, c3, 1))  # 8^3
        self.stage4 = nn.Sequential(_block(c3, c4, 2), _block(c4, c4, 1))  # 4^3
        n_feat = (c2 + c3 + c4) * (2 if pooling == "mean+max" else 1)
        self.n_features = n_feat
        self.age_head = nn.Sequential(
            nn.Linear(n_feat + n_scalars, hidden),
            nn.LeakyReLU(0.1),
            nn.Dropout(dropout),
            nn.Linear(hidden, 2),
        )
        self.seg_head = nn.Conv3d(c2, 1, 1)
        self.recon_head = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="trilinear", align_corners=False),
            nn.Conv3d(c3, in_channels, 3, padding=1),
        )

    def forward(self, x: torch.Tensor, scalars: torch.Tensor) -> dict:
        f2 = self.stage2(self.stage1(x))
        f3 = self.stage3(f2)
        f4 = self.stage4(f3)
        pooled = [f.mean(dim=(2, 3, 4)) for f in (f2, f3, f4)]
        if self.pooling == "mean+max":
            pooled += [f.amax(dim=(2, 3, 4)) for f in (f2, f3, f4)]
        feats = torch.cat(pooled, dim=1)
        out = self.age_head(torch.cat([feats, scalars], dim=1))
        return {
            "age": out[:, 0] * self.age_scale,
            "log_var": out[:, 1] + 2.0,  # centred near 1 month SD... e^2 ~ 7.4 months^2
            "features": feats,
            "seg": self.seg_head(f2),
            "recon": self.recon_head(f3),
            "last_conv": f4,
        }
