"""MeshNet: a fully convolutional network of dilated 3D convolutions (brain extraction)."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["MeshNet", "MINDGRAB_DILATIONS"]

#: Dilations of MindGrab's 25 feature layers (``model.json`` of neuroneural/brainchop,
#: ``public/models/mindgrab/``): five cycles of 16, 8, 4, 2, 1.
MINDGRAB_DILATIONS: tuple[int, ...] = (16, 8, 4, 2, 1) * 5


class MeshNet(nn.Module):
    """MeshNet (Fedorov et al., IJCNN 2017; brainchop, Masoud et al., JOSS 2023).

    Each feature layer is a bias-free ``Conv3d`` (kernel 3, ``padding = dilation``), then
    ``GroupNorm(channels, channels, affine=False)`` (a per-channel normalization over the whole
    volume) and GELU; a 1x1x1 ``Conv3d`` with bias gives the class logits. With
    :data:`MINDGRAB_DILATIONS`, 15 channels and 2 classes this is MindGrab (146,237 weights),
    brainchop's skull-stripping model, trained at 1 mm on conformed 256^3 volumes.

    Args:
        in_channels: input channels (1: one image).
        channels: feature channels of every layer.
        n_classes: output classes (2: background, brain).
        dilations: dilation of each feature layer.

    Inputs:
        x: (N, in_channels, D, H, W) float32, intensities scaled to [0, 1].

    Returns:
        (N, n_classes, D, H, W) logits.
    """

    def __init__(self, in_channels: int = 1, channels: int = 15, n_classes: int = 2,
                 dilations: Sequence[int] = MINDGRAB_DILATIONS) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = in_channels
        for d in dilations:
            layers += [
                nn.Conv3d(cin, channels, 3, padding=int(d), dilation=int(d), bias=False),
                nn.GroupNorm(channels, channels, affine=False),
                nn.GELU(),
            ]
            cin = channels
        self.features = nn.Sequential(*layers)
        self.output = nn.Conv3d(channels, n_classes, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output(self.features(x))

