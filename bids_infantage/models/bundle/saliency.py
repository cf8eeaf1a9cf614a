"""Saliency maps of a prediction: which voxels the estimated age depends on."""
from __future__ import annotations

import numpy as np


def gradient_saliency(net, x, s) -> np.ndarray:
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


def grad_cam(net, x, s) -> np.ndarray:
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
