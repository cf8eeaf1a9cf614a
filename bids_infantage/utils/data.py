"""Access to package data by name."""
from __future__ import annotations

import json
from functools import cache
from importlib import resources
from pathlib import Path


def data_path(name: str) -> Path:
    """Path of a file in ``bids_infantage/data``."""
    return Path(str(resources.files("bids_infantage") / "data" / name))


@cache
def load_json(name: str) -> dict:
    """Load a JSON file from package data (e.g. registration parameters)."""
    return json.loads(data_path(name).read_text())
