"""Reliability: atomic derivative writes, a failing subject among good ones, determinism.

The kill-and-resume test runs on a real demo subject and lives in ``test_e2e_demo.py``.
"""
from __future__ import annotations

import csv
import os
import re
from pathlib import Path

import nibabel as nb
import numpy as np
import pytest

from bids_infantage.utils import io


# --------------------------------------------------------------------------- utils.io
def test_atomic_write_text_replaces_whole_file(tmp_path):
    path = tmp_path / "sub" / "table.tsv"
    io.atomic_write_text(path, "a\tb\n1\t2\n")
    io.atomic_write_text(path, "a\tb\n3\t4\n")
    assert path.read_text() == "a\tb\n3\t4\n"
    assert list(path.parent.iterdir()) == [path]
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_failed_write_keeps_previous_file(tmp_path, monkeypatch):
    """An error while writing leaves the old content and no temporary file."""
    path = tmp_path / "table.tsv"
    io.atomic_write_text(path, "old\n")

    class Boom(RuntimeError):
        pass

    def explode(*args, **kwargs):
        raise Boom("disk full")

    monkeypatch.setattr(io.os, "fsync", explode)
    with pytest.raises(Boom):
        io.atomic_write_text(path, "new content that never lands\n")
    with pytest.raises(Boom):
        io.atomic_copy(__file__, path)
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["table.tsv"]


def test_atomic_copy_and_remove_partials(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(os.urandom(3 << 20))
    dest = tmp_path / "out" / "anat" / "copy.bin"
    io.atomic_copy(src, dest)
    assert dest.read_bytes() == src.read_bytes()
    # what a killed run leaves: a hidden partial file beside the destination
    stale = dest.parent / ".copy.bin.x1y2.partial"
    stale.write_bytes(b"half")
    assert io.remove_partials(tmp_path / "out") == [stale]
    assert not stale.exists() and dest.exists()


def test_datasink_writes_through_staging(tmp_path, make_brain):
    """DerivativesDataSink publishes image + sidecar; nothing staged or partial is left."""
    from bids_infantage.interfaces.bids import DerivativesDataSink

    src = make_brain(tmp_path / "bids" / "sub-01" / "anat" / "sub-01_T2w.nii.gz")
    img = make_brain(tmp_path / "work" / "mask.nii.gz")
    out = tmp_path / "out"
    dds = DerivativesDataSink(base_directory=str(out), desc="brain", suffix="mask",
                              in_file=str(img), source_file=str(src), Type="Brain")
    (tmp_path / "node").mkdir()
    res = dds.run(cwd=str(tmp_path / "node"))
    target = out / "sub-01" / "anat" / "sub-01_desc-brain_mask.nii.gz"
    assert res.outputs.out_file == str(target)
    assert res.outputs.out_meta == str(target).replace(".nii.gz", ".json")
    assert np.array_equal(nb.load(target).get_fdata() > 0, nb.load(img).get_fdata() > 0)
    assert '"Type": "Brain"' in Path(res.outputs.out_meta).read_text()
    assert not (tmp_path / "node" / "_staging").exists()
    assert not list(out.rglob("*.partial"))


def test_datasink_interrupted_copy_keeps_previous_output(tmp_path, make_brain, monkeypatch):
    """A copy that dies half-way leaves the previous derivative intact."""
    from bids_infantage.interfaces import bids as bids_iface
    from bids_infantage.interfaces.bids import DerivativesDataSink

    src = make_brain(tmp_path / "bids" / "sub-01" / "anat" / "sub-01_T2w.nii.gz")
    first = make_brain(tmp_path / "work" / "a.nii.gz", semi_axes_mm=(40, 40, 40))
    second = make_brain(tmp_path / "work" / "b.nii.gz", semi_axes_mm=(60, 60, 60))
    out = tmp_path / "out"
    kwargs = dict(base_directory=str(out), desc="brain", suffix="mask", source_file=str(src))
    for name in ("n1", "n2"):
        (tmp_path / name).mkdir()
    DerivativesDataSink(in_file=str(first), **kwargs).run(cwd=str(tmp_path / "n1"))
    target = out / "sub-01" / "anat" / "sub-01_desc-brain_mask.nii.gz"
    before = target.read_bytes()

    def half_copy(fin, fout, length=0):
        fout.write(fin.read(100))
        raise KeyboardInterrupt  # what a kill looks like to the writer

    monkeypatch.setattr(io.shutil, "copyfileobj", half_copy)
    with pytest.raises(KeyboardInterrupt):
        bids_iface.DerivativesDataSink(in_file=str(second), **kwargs).run(cwd=str(tmp_path / "n2"))
    assert target.read_bytes() == before
    assert not list(out.rglob("*.partial"))


# --------------------------------------------------------------------------- failing subject
def test_failing_subject_does_not_stop_the_others(tmp_path, make_bids, make_brain, capsys):
    """One corrupted T2w among three subjects: the other two finish, exit code 1, and the
    summary names the failed subject, the file, the fix and an existing crash file."""
    from bids_infantage.cli.run import main

    root = make_bids(tmp_path, {"a": {"age": 6}, "bad": {"age": 9}, "b": {"age": 12}},
                     images=False)
    for sub in ("a", "bad", "b"):
        for suffix in ("T1w", "T2w"):
            make_brain(root / f"sub-{sub}" / "anat" / f"sub-{sub}_{suffix}.nii.gz")
    broken = root / "sub-bad" / "anat" / "sub-bad_T2w.nii.gz"
    data = broken.read_bytes()
    broken.write_bytes(data[: len(data) // 2])  # truncated gzip

    out = tmp_path / "out"
    rc = main([str(root), str(out), "participant", "-w", str(tmp_path / "work"),
               "--nprocs", "2", "--skip-bids-validation"])
    console = capsys.readouterr().err
    assert rc == 1
    for sub in ("a", "b"):
        table = out / f"sub-{sub}" / "anat" / f"sub-{sub}_brainage.tsv"
        with open(table) as fh:
            row = next(csv.DictReader(fh, delimiter="\t"))
        assert float(row["predicted_age_months"]) == pytest.approx(
            float(row["predicted_age_months"]))  # a number, not n/a
        assert (out / f"sub-{sub}.html").is_file()
    assert not (out / "sub-bad" / "anat" / "sub-bad_brainage.tsv").exists()
    line = next(ln for ln in console.splitlines() if ln.strip().startswith("bad: FAILED"))
    assert str(broken) in line and "truncated" in line and "re-export" in line
    crash = Path(re.search(r"crash file: (\S+)\)", line).group(1))
    assert crash.is_file() and crash.is_relative_to(out / "sub-bad" / "log")
    assert "Traceback" not in console
    assert not list(out.rglob("*.partial"))
    assert crash.name in (out / "sub-bad.html").read_text()  # the report's Errors section


# --------------------------------------------------------------------------- determinism
def test_preprocessing_and_prediction_are_deterministic(tmp_path, make_brain):
    """The shared preprocessing path (N4, rigid, normalization) and the ensemble give
    bit-identical results when run twice."""
    from bids_infantage.models.bundle.resolve import load_bundle
    from bids_infantage.models.preprocess import preprocess_session

    def value_fn(r):
        return 100.0 * (1.0 - 0.6 * r ** 2) + 20.0 * np.cos(6 * r) + 15.0

    t1w = make_brain(tmp_path / "t1w.nii.gz", value_fn=value_fn)
    t2w = make_brain(tmp_path / "t2w.nii.gz", value_fn=lambda r: 200.0 - value_fn(r))
    import SimpleITK as sitk

    bundle = load_bundle()
    results = []
    for _ in range(2):
        prep = preprocess_session(sitk.ReadImage(str(t1w), sitk.sitkFloat32),
                                  sitk.ReadImage(str(t2w), sitk.sitkFloat32),
                                  reference_mask=bundle.reference_mask())
        pred = bundle.predict(prep["image"], prep["volume_ml"], "t1w+t2w", saliency=True)
        results.append((prep, pred))
    (prep_a, pred_a), (prep_b, pred_b) = results
    assert np.array_equal(prep_a["image"], prep_b["image"])
    assert prep_a["volume_ml"] == prep_b["volume_ml"]
    assert pred_a["members"] == pred_b["members"]
    assert (pred_a["age"], pred_a["sd"]) == (pred_b["age"], pred_b["sd"])
    assert np.array_equal(pred_a["saliency"], pred_b["saliency"])


def test_t1w_and_t2w_that_do_not_overlap_are_brought_together(tmp_path, make_brain):
    """A T1w whose header puts it 300 mm away from the T2w (no overlap in world space): the
    rigid registration starts from aligned centres and brings the brains together (mask Dice
    > 0.9, the QC threshold is 0.85)."""
    import SimpleITK as sitk

    from bids_infantage.image.masks import mask_from_skull_stripped
    from bids_infantage.image.registration import register_rigid_t1w_to_t2w
    from bids_infantage.image.resampling import resample_like

    t2w = make_brain(tmp_path / "t2w.nii.gz")
    t1w = make_brain(tmp_path / "t1w.nii.gz")
    img = nb.load(t1w)
    affine = img.affine.copy()
    affine[0, 3] += 300.0
    nb.Nifti1Image(np.asanyarray(img.dataobj), affine).to_filename(str(t1w))
    fixed = sitk.ReadImage(str(t2w), sitk.sitkFloat32)
    moving = sitk.ReadImage(str(t1w), sitk.sitkFloat32)
    fixed_mask = mask_from_skull_stripped(fixed)
    xfm, _ = register_rigid_t1w_to_t2w(fixed, moving, fixed_mask)
    moved = sitk.GetArrayFromImage(resample_like(moving, fixed, xfm)) > 0
    ref = sitk.GetArrayFromImage(fixed_mask) > 0
    assert not (sitk.GetArrayFromImage(resample_like(moving, fixed)) > 0).any()  # no overlap before
    dice = 2 * (moved & ref).sum() / (moved.sum() + ref.sum())
    assert dice > 0.9


# --------------------------------------------------------------------------- interruption
@pytest.mark.parametrize("nprocs, signame, to_group", [
    ("1", "SIGINT", True),   # Ctrl-C in a terminal: the whole foreground process group
    ("2", "SIGINT", True),
    ("2", "SIGTERM", False),  # SLURM's time limit / kill: the main process
])
def test_interrupted_run_prints_one_line_and_exits_130(tmp_path, make_bids, make_brain,
                                                        nprocs, signame, to_group):
    """#19 item 3: Ctrl-C or SIGTERM during the workflow ends the run with one line, exit
    130, no traceback and no crash file (Nipype used to record a KeyboardInterrupt as a failed
    node and go on, and MultiProc workers printed tracebacks); the lock is released; a rerun
    with the same -w finishes (once: the reruns take most of the time)."""
    import signal
    import subprocess
    import sys
    import time

    root = make_bids(tmp_path, {s: {"age": 6} for s in ("a", "b")}, images=False)
    for sub in ("a", "b"):
        for suffix in ("T1w", "T2w"):
            make_brain(root / f"sub-{sub}" / "anat" / f"sub-{sub}_{suffix}.nii.gz")
    out, work = tmp_path / "out", tmp_path / "work"
    cmd = [sys.executable, "-m", "bids_infantage.cli.run", str(root), str(out), "participant",
           "-w", str(work), "--nprocs", nprocs, "--skip-bids-validation"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    lines = []
    for line in proc.stdout:  # wait until the workflow runs, then a little into it
        lines.append(line)
        if "running with" in line:
            break
    time.sleep(2.0)
    sig = getattr(signal, signame)
    os.killpg(proc.pid, sig) if to_group else proc.send_signal(sig)
    rest, _ = proc.communicate(timeout=60)
    console = "".join(lines) + rest
    assert proc.returncode == 130, console
    interrupted = [ln for ln in console.splitlines() if "interrupted" in ln]
    assert interrupted == [f"bids-infantage: interrupted ({signame}); rerun with the same -w "
                           "to resume from the cache"], console
    assert "Traceback" not in console and "Summary" not in console, console
    assert not list(out.rglob("crash-*")) and not list(out.rglob("*.partial"))
    assert not (out / ".bids-infantage-locks").exists()
    if nprocs == "1":
        rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        assert rerun.returncode == 0, rerun.stderr
        assert all((out / f"sub-{s}" / "anat" / f"sub-{s}_brainage.tsv").is_file() for s in "ab")


# --------------------------------------------------------------------------- same brain
def _tissue_brain(seed: int, shape=(72, 72, 72), spacing=1.5):
    """An ellipsoid 'brain' with random tissue boundaries: label maps (0 CSF, 1 GM, 2 WM)
    from smoothed noise, as SimpleITK T1w-like and T2w-like (inverse contrast) images."""
    import SimpleITK as sitk
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    zz, yy, xx = np.meshgrid(*[np.linspace(-1, 1, s) for s in shape], indexing="ij")
    inside = (zz / 0.8) ** 2 + (yy / 0.9) ** 2 + (xx / 0.75) ** 2 < 1
    field = ndimage.gaussian_filter(rng.standard_normal(shape), 3.0)
    labels = np.digitize(field, np.quantile(field[inside], [0.2, 0.55])) * inside
    images = []
    for contrast in ((0.2, 0.6, 1.0), (1.0, 0.6, 0.3)):  # T1w, T2w
        data = np.choose(labels, contrast) * inside + 0.02 * rng.standard_normal(shape) * inside
        img = sitk.GetImageFromArray(data.astype(np.float32))
        img.SetSpacing([spacing] * 3)
        images.append(img)
    mask = sitk.GetImageFromArray(inside.astype(np.uint8))
    mask.SetSpacing([spacing] * 3)
    return images[0], images[1], mask


def test_edge_correlation_tells_one_brain_from_two():
    """#19 item 10: a T1w and a T2w of different infants passed (mask Dice 0.90). The edge
    correlation is high for one brain's two contrasts and low for two brains, and only the
    latter gets the QC message."""
    from bids_infantage.image.registration import SAME_BRAIN_MIN, edge_correlation, same_brain_messages

    t1w_a, t2w_a, mask_a = _tissue_brain(1)
    _, t2w_b, _ = _tissue_brain(2)
    same = edge_correlation(t1w_a, t2w_a, mask_a)
    other = edge_correlation(t1w_a, t2w_b, mask_a)
    assert same > 0.8 and other < 0.45, (same, other)
    assert same_brain_messages(same) == []
    message = same_brain_messages(other)
    assert len(message) == 1 and "may not show the same brain" in message[0]
    assert f"< {SAME_BRAIN_MIN:.2f}" in message[0]


# --------------------------------------------------------------------------- stale outputs
def test_rerun_after_removing_the_t1w_leaves_no_output_of_the_old_run(tmp_path, make_bids,
                                                                        make_brain, capsys):
    """#19 item 4: rerun into the same output folder (same -w) after removing the T1w. The old
    T1w, ratio, transform and their figures used to stay, and the new report embedded the old
    figures; a stale crash file stayed listed in the now-successful report."""
    from bids_infantage.cli.run import main

    root = make_bids(tmp_path, {"01": {"age": 6}}, images=False)
    for suffix in ("T1w", "T2w"):
        make_brain(root / "sub-01" / "anat" / f"sub-01_{suffix}.nii.gz")
    out, work = tmp_path / "out", tmp_path / "work"
    args = [str(root), str(out), "participant", "-w", str(work), "--skip-bids-validation",
            "--nprocs", "1"]
    assert main(args) == 0
    before = {p.name for p in (out / "sub-01").rglob("*") if p.is_file()}
    t1w_outputs = {n for n in before if "T1w" in n or "ratio" in n or "xfm" in n}
    assert any("ratio" in n for n in t1w_outputs) and any(n.endswith(".svg") for n in t1w_outputs)
    stale_crash = out / "sub-01" / "log" / "crash-20200101-000000-x-brain_mask_t2w-0.txt"
    stale_crash.parent.mkdir(exist_ok=True)
    stale_crash.write_text("Node: bids_infantage_wf.single_session_01_wf.brain_mask_t2w\n"
                           "InputError: an old failure\n")
    os.utime(stale_crash, (0, 0))
    (root / "sub-01" / "anat" / "sub-01_T1w.nii.gz").unlink()
    capsys.readouterr()
    import time

    time.sleep(1.5)  # files written within 1 s of a run's start count as its own (mtime margin)
    assert main(args) == 0
    assert "removed" in capsys.readouterr().err
    after = {p.name for p in (out / "sub-01").rglob("*") if p.is_file()}
    assert [n for n in sorted(after) if "ratio" in n or "T1w" in n] == []
    assert not stale_crash.exists()
    report = (out / "sub-01.html").read_text()
    assert stale_crash.name not in report
    for name in before - after:
        assert name not in report, name
    with open(out / "sub-01" / "anat" / "sub-01_brainage.tsv") as fh:
        assert next(csv.DictReader(fh, delimiter="\t"))["model_configuration"] == "t2w"
