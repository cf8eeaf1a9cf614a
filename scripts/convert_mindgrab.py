#!/usr/bin/env python
"""Convert MindGrab's TF.js weights (model.json + model.bin) to the package's safetensors.

Usage::

    .venv/bin/python scripts/convert_mindgrab.py ../shared/brain-extraction/mindgrab \
        bids_infantage/data/brain-extraction

Reads the Keras/TF.js weights manifest (float32, little-endian, in manifest order), transposes
each kernel from TF's (D, H, W, in, out) to torch's (out, in, D, H, W), checks the result loads
into :class:`bids_infantage.models.nets.meshnet.MeshNet` with the dilations of ``model.json``,
and writes ``mindgrab.safetensors``, ``mindgrab.json`` (architecture, source, sha256) and the
MIT licence next to it.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np


def read_tfjs(folder: Path) -> tuple[dict[str, np.ndarray], list[int]]:
    """Weights by TF.js name and the dilations of the Conv3D feature layers."""
    model = json.loads((folder / "model.json").read_text())
    layers = model["modelTopology"]["model_config"]["config"]["layers"]
    dilations = [int(layer["config"]["dilation_rate"][0]) for layer in layers
                 if layer["class_name"] == "Conv3D" and layer["name"] != "output"]
    weights: dict[str, np.ndarray] = {}
    for group in model["weightsManifest"]:
        blob = b"".join((folder / p).read_bytes() for p in group["paths"])
        offset = 0
        for spec in group["weights"]:
            if spec["dtype"] != "float32":
                raise SystemExit(f"{folder}: weight {spec['name']} is {spec['dtype']}, expected float32")
            n = int(np.prod(spec["shape"]))
            weights[spec["name"]] = np.frombuffer(blob, "<f4", n, offset).reshape(spec["shape"])
            offset += 4 * n
        if offset != len(blob):
            raise SystemExit(f"{folder}: {len(blob) - offset} bytes of model.bin left unread")
    return weights, dilations


def to_torch_state(weights: dict[str, np.ndarray], n_layers: int) -> dict[str, np.ndarray]:
    """State dict of MeshNet (features.{3k} conv kernels, output conv) from TF.js arrays."""
    state = {}
    for k in range(n_layers):
        state[f"features.{3 * k}.weight"] = np.ascontiguousarray(
            weights[f"conv3d_{k}_gn/kernel"].transpose(4, 3, 0, 1, 2))
    state["output.weight"] = np.ascontiguousarray(weights["output/kernel"].transpose(4, 3, 0, 1, 2))
    state["output.bias"] = np.ascontiguousarray(weights["output/bias"])
    return state


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("source", type=Path, help="folder with model.json, model.bin, LICENSE")
    ap.add_argument("out", type=Path, help="output folder (package data)")
    args = ap.parse_args(argv)

    import torch
    from safetensors.torch import save_file

    from bids_infantage.models.nets.meshnet import MeshNet

    weights, dilations = read_tfjs(args.source)
    state = {k: torch.from_numpy(v.copy()) for k, v in to_torch_state(weights, len(dilations)).items()}
    net = MeshNet(1, state["features.0.weight"].shape[0], state["output.bias"].shape[0], dilations)
    net.load_state_dict(state, strict=True)
    n_weights = sum(int(v.numel()) for v in state.values())
    args.out.mkdir(parents=True, exist_ok=True)
    target = args.out / "mindgrab.safetensors"
    save_file(state, str(target))
    shutil.copyfile(args.source / "LICENSE", args.out / "LICENSE-mindgrab")
    meta = {
        "name": "mindgrab",
        "architecture": "MeshNet",
        "in_channels": 1, "channels": int(state["features.0.weight"].shape[0]),
        "n_classes": int(state["output.bias"].shape[0]), "dilations": dilations,
        "n_weights": n_weights,
        "source": "neuroneural/brainchop public/models/mindgrab (commit 4c87885), MIT licence",
        "converted_by": "scripts/convert_mindgrab.py",
        "sha256": hashlib.sha256(target.read_bytes()).hexdigest(),
    }
    (args.out / "mindgrab.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"{target}: {n_weights} weights, {len(dilations)} feature layers, sha256 {meta['sha256'][:12]}")


if __name__ == "__main__":
    main()
