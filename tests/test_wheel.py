"""The wheel carries everything a run needs (issue #17): build it, install it into a fresh
virtual environment, run one demo subject from it."""
from __future__ import annotations

import csv
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # no build isolation: setuptools and wheel of this environment, no index needed
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", str(ROOT), "-w", str(out)], check=True, capture_output=True)
    (found,) = out.glob("bids_infantage-*.whl")
    return found


def test_wheel_holds_every_package_file(wheel):
    """Every tracked non-Python file under bids_infantage/ (model bundle, MindGrab weights,
    demo images, report spec, registration settings) is in the wheel, and the scripts are."""
    tracked = subprocess.run(["git", "ls-files", "bids_infantage"], cwd=ROOT, check=True,
                             capture_output=True, text=True).stdout.split()
    if not tracked:
        pytest.skip("needs a git checkout (git ls-files) to list the package files")
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = [f for f in tracked if f not in names]
    assert not missing, f"not in the wheel: {missing[:10]}"
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    for script in ("bids-infantage", "bids-infantage-train", "bids-infantage-cv",
                   "bids-infantage-demo"):
        assert f"{script} =" in text


def test_installed_wheel_runs_a_demo_subject(wheel, tmp_path):
    """A fresh venv with only the wheel installed (its dependencies are taken from this
    environment's site-packages through a .pth file, which does not load the editable
    install's import hook), then ``bids-infantage-demo`` on one subject, from a folder
    outside the checkout."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    (Path(site) / "deps-from-test-env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
                   check=True, capture_output=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    where = subprocess.run([str(py), "-c", "import bids_infantage; print(bids_infantage.__file__)"],
                           check=True, capture_output=True, text=True, cwd=tmp_path, env=env)
    assert where.stdout.strip().startswith(site), where.stdout  # the wheel, not the checkout
    out = tmp_path / "demo"
    proc = subprocess.run([str(venv / "bin" / "bids-infantage-demo"), str(out),
                           "--participant-label", "m06", "--nprocs", "1"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = out / "bids-infantage" / "sub-m06" / "anat" / "sub-m06_brainage.tsv"
    row = next(csv.DictReader(open(table), delimiter="\t"))
    assert 2.0 < float(row["predicted_age_months"]) < 10.0, row["predicted_age_months"]
    assert (out / "bids-infantage" / "sub-m06.html").is_file()
    assert (out / "bids-infantage" / "group.html").is_file()
    version = subprocess.run([str(venv / "bin" / "bids-infantage"), "--version"],
                             capture_output=True, text=True, env=env)
    assert "default model infantage-default" in version.stdout
