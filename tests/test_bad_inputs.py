"""Bad and unusual inputs, each tested at the earliest layer that must catch it.

Layers: ``load_validated`` (every input image), the ``BrainMask`` interface, ``chronological_age``,
``collect_sessions`` / ``select_run`` (pybids queries) and ``parse_args`` (command line).
Errors must be an :class:`InputError` (or argparse's exit 2) whose message is one line, names
the file or folder, and says what to do; documented fallbacks return a warning instead.
The cases and messages are listed for users in ``docs/troubleshooting.md``.
"""
from __future__ import annotations

import gzip
import json
import os
import stat
from pathlib import Path

import nibabel as nb
import numpy as np
import pytest
from conftest import make_bids, make_brain

from bids_infantage.cli.parser import parse_args
from bids_infantage.image.validation import load_validated
from bids_infantage.interfaces.brainmask import BrainMask
from bids_infantage.utils.bids import chronological_age, collect_sessions, select_run
from bids_infantage.utils.errors import InputError


def assert_one_line(message: str, *fragments: str) -> None:
    """``message`` is a single line containing every fragment (file name, fix)."""
    assert "\n" not in message and "\r" not in message, message
    assert "Traceback" not in message, message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"


def raise_input_error(fn, *fragments: str) -> str:
    with pytest.raises(InputError) as info:
        fn()
    assert type(info.value) is InputError
    assert_one_line(str(info.value), *fragments)
    return str(info.value)


def parser_error(capsys, argv, *fragments: str) -> str:
    """Run ``parse_args``; it must exit with code 2 and one ``error:`` line."""
    with pytest.raises(SystemExit) as info:
        parse_args([str(a) for a in argv])
    assert info.value.code == 2
    err = capsys.readouterr().err
    errors = [ln for ln in err.splitlines() if "error:" in ln]
    assert len(errors) == 1 and err.strip().splitlines()[-1] == errors[0], err
    assert_one_line(errors[0], *fragments)
    return errors[0]


def _save(data, path, affine=None) -> Path:
    affine = np.diag([3.0, 3.0, 3.0, 1.0]) if affine is None else affine
    nb.Nifti1Image(np.asarray(data, dtype=np.float32), affine).to_filename(str(path))
    return Path(path)


@pytest.fixture
def brain(tmp_path):
    """A valid skull-stripped 48^3 brain at 3 mm."""
    return make_brain(tmp_path / "sub-01_T1w.nii.gz")


def _brain_data(path) -> tuple[np.ndarray, np.ndarray]:
    img = nb.load(str(path))
    return np.asarray(img.dataobj, dtype=np.float32), img.affine


# --------------------------------------------------------------------------------------------
# load_validated: unreadable files
# --------------------------------------------------------------------------------------------
def test_truncated_gzip(brain):
    raw = brain.read_bytes()
    brain.write_bytes(raw[: len(raw) // 2])
    raise_input_error(lambda: load_validated(brain), str(brain), "truncated or corrupted",
                      "re-export it")


@pytest.mark.parametrize("content", [
    pytest.param(b"participant_id\tage\n" * 100, id="text"),
    pytest.param(gzip.compress(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8), id="gzipped-png"),
    pytest.param(b"", id="empty-file"),
])
def test_not_nifti(tmp_path, content):
    path = tmp_path / "sub-01_T1w.nii.gz"
    path.write_bytes(content)
    raise_input_error(lambda: load_validated(path), str(path), "not a NIfTI image", "dcm2niix")


def test_missing_file(tmp_path):
    path = tmp_path / "sub-01_T1w.nii.gz"
    raise_input_error(lambda: load_validated(path), str(path), "does not exist", "check the path")


def test_dangling_link_text_file(tmp_path):
    """A link stored as a text file whose target is not there (data not fetched)."""
    path = tmp_path / "sub-01_T1w.nii.gz"
    path.write_text("../../templateflow/tpl-X/tpl-X_T1w.nii.gz")
    raise_input_error(lambda: load_validated(path), str(path), "link stored as a text file",
                      "tpl-X_T1w.nii.gz", "does not exist", "datalad get")


def test_link_text_file_is_followed(tmp_path):
    target = make_brain(tmp_path / "templates" / "tpl_T1w.nii.gz")
    link = tmp_path / "bids" / "sub-01" / "anat" / "sub-01_T1w.nii.gz"
    link.parent.mkdir(parents=True)
    link.write_text("../../../templates/tpl_T1w.nii.gz\n")
    img, warnings = load_validated(link)
    expected, _ = _brain_data(target)
    assert warnings == []
    np.testing.assert_array_equal(img.get_fdata(dtype=np.float32), expected)


# --------------------------------------------------------------------------------------------
# load_validated: dimensions and values
# --------------------------------------------------------------------------------------------
def test_4d_several_volumes(tmp_path, brain):
    data, affine = _brain_data(brain)
    path = _save(np.stack([data, data, data], axis=-1), tmp_path / "sub-01_run-1_T1w.nii.gz", affine)
    raise_input_error(lambda: load_validated(path), str(path), "4 dimensions",
                      "single 3D volume", "split the series")


def test_4d_single_volume_is_squeezed(tmp_path, brain):
    data, affine = _brain_data(brain)
    path = _save(data[..., None], tmp_path / "sub-02_T1w.nii.gz", affine)
    img, warnings = load_validated(path)
    assert img.shape == data.shape
    assert warnings == ["singleton 4th dimension dropped"]


def test_nan_and_inf_voxels_take_the_nearest_finite_value(tmp_path, brain):
    data, affine = _brain_data(brain)
    data[24, 24, 24] = np.nan
    data[20, 24, 24] = np.inf
    data[1, 1, 1] = -np.inf  # in the background
    path = _save(data, tmp_path / "sub-01_T2w.nii.gz", affine)
    img, warnings = load_validated(path)
    out = img.get_fdata(dtype=np.float32)
    assert np.isfinite(out).all()
    assert out[24, 24, 24] > 0 and out[20, 24, 24] > 0  # brain tissue, not a hole
    assert out[1, 1, 1] == 0  # background stays background
    assert warnings == ["3 NaN/Inf voxels filled from the nearest finite voxel"]


def test_nan_slices_do_not_split_the_brain_mask(tmp_path, brain):
    """Every 7th slice NaN: the mask is one piece of the clean volume, no QC message."""
    data, affine = _brain_data(brain)
    clean = _save(data, tmp_path / "clean.nii.gz", affine)
    data[:, :, ::7] = np.nan
    path = _save(data, tmp_path / "sub-01_T2w.nii.gz", affine)
    img, _ = load_validated(path)
    img.to_filename(tmp_path / "validated.nii.gz")
    work = tmp_path / "work"
    work.mkdir()
    nan_mask = BrainMask(in_file=str(tmp_path / "validated.nii.gz")).run(cwd=str(work)).outputs
    work2 = tmp_path / "work2"
    work2.mkdir()
    clean_mask = BrainMask(in_file=str(clean)).run(cwd=str(work2)).outputs
    assert nan_mask.method == "skull-stripped input"
    assert abs(nan_mask.volume_ml - clean_mask.volume_ml) < 0.02 * clean_mask.volume_ml
    assert not [w for w in nan_mask.warnings if "pieces" in w]


def test_all_zero_image(tmp_path):
    path = _save(np.zeros((48, 48, 48)), tmp_path / "sub-01_T1w.nii.gz")
    raise_input_error(lambda: load_validated(path), str(path), "every voxel is zero", "re-export it")


def test_too_small_grid(tmp_path):
    path = _save(np.ones((48, 48, 4)), tmp_path / "sub-01_T1w.nii.gz")
    raise_input_error(lambda: load_validated(path), str(path), "too small",
                      "give the full anatomical volume")


def test_negative_intensities_clipped(tmp_path, brain):
    data, affine = _brain_data(brain)
    data[24, 24, 24] = -50
    path = _save(data, tmp_path / "sub-01_T1w.nii.gz", affine)
    img, warnings = load_validated(path)
    assert img.get_fdata(dtype=np.float32).min() == 0
    assert warnings == ["negative intensities clipped to 0"]


def test_extreme_anisotropy_warns(tmp_path):
    path = make_brain(tmp_path / "sub-01_T2w.nii.gz", shape=(96, 96, 24), zooms=(1.0, 1.0, 5.0))
    img, warnings = load_validated(path)
    assert img.header.get_zooms()[:3] == pytest.approx((1.0, 1.0, 5.0))
    assert len(warnings) == 2
    assert_one_line(warnings[0], "anisotropic voxels", "thick slices lower accuracy")
    assert_one_line(warnings[1], "(1.0, 1.0, 5.0) mm are coarser than the model's 3 mm input")


@pytest.mark.parametrize("zooms, coarse", [((3.0, 3.0, 3.0), False), ((1.0, 1.0, 1.0), False),
                                           ((10.0, 10.0, 10.0), True), ((3.5, 3.5, 3.5), True)])
def test_voxels_coarser_than_the_model_input_warn(tmp_path, zooms, coarse):
    """#19 item 10: 10 mm voxels were accepted without a word (+2 months)."""
    shape = tuple(int(round(150 / z)) for z in zooms)
    path = make_brain(tmp_path / "sub-01_T2w.nii.gz", shape=shape, zooms=zooms)
    _, warnings = load_validated(path)
    assert any("coarser than the model's 3 mm input" in w for w in warnings) is coarse


def test_qc_values_are_printed_consistently_with_their_threshold(tmp_path):
    """#19 item 10: a Dice of 0.848 was printed "0.85" beside a "< 0.85" threshold."""
    from bids_infantage.interfaces.inference import QC_DICE_MIN, BrainAgeTable
    from bids_infantage.utils.numbers import format_pair

    assert format_pair(0.848, 0.85, 2) == ("0.848", "0.850")
    assert format_pair(0.8496, 0.85, 3) == ("0.8496", "0.8500")
    assert format_pair(0.95, 0.85, 3) == ("0.950", "0.850")
    assert format_pair(2.54, 2.5, 1, sign=True) == ("+2.54", "+2.50")
    assert format_pair(12.04, 11.96, 1) == ("12.04", "11.96")
    pred = {"flags": [], "out_of_range": False, "age_range_months": [0, 24], "configuration": "t1w+t2w",
            "age": 6.0, "sd": 1.0, "lower": 4.0, "upper": 8.0, "coverage": 0.9, "volume_ml": 700.0,
            "volume_z": 0.0, "model_name": "m", "model_sha256": "0" * 64}
    (tmp_path / "pred.json").write_text(json.dumps(pred))
    node = BrainAgeTable(prediction=str(tmp_path / "pred.json"), subject="01",
                         t1w_t2w_dice=0.8496, normalization_dice=0.9)
    res = node.run(cwd=str(tmp_path))
    header, row = Path(res.outputs.out_file).read_text().splitlines()
    values = dict(zip(header.split("\t"), row.split("\t")))
    assert float(values["t1w_t2w_mask_dice"]) < QC_DICE_MIN
    assert "mask Dice 0.8496 < 0.8500" in values["qc_flags"]


# --------------------------------------------------------------------------------------------
# load_validated: orientation
# --------------------------------------------------------------------------------------------
MARKER = (10, 30, 22)  # voxel index (off every symmetry axis) of a bright marker


def _world(affine, ijk):
    return (affine @ np.array([*ijk, 1.0]))[:3]


def _marked(tmp_path, affine):
    data, _ = _brain_data(make_brain(tmp_path / "ras.nii.gz"))
    data[MARKER] = 1000.0
    return _save(data, tmp_path / "sub-01_T1w.nii.gz", affine)


def test_lps_image_comes_out_ras_with_data_flipped(tmp_path):
    affine = np.diag([-3.0, -3.0, 3.0, 1.0])
    affine[:3, 3] = [70.5, 70.5, -70.5]
    path = _marked(tmp_path, affine)
    assert nb.aff2axcodes(affine) == ("L", "P", "S")
    img, warnings = load_validated(path)
    assert warnings == []
    assert nb.aff2axcodes(img.affine) == ("R", "A", "S")
    out = img.get_fdata(dtype=np.float32)
    found = tuple(int(i) for i in np.argwhere(out == 1000.0)[0])
    assert found == (47 - MARKER[0], 47 - MARKER[1], MARKER[2])  # flipped along x and y
    np.testing.assert_allclose(_world(img.affine, found), _world(affine, MARKER), atol=1e-4)


def test_oblique_image_loads_as_closest_ras(tmp_path):
    angle = np.deg2rad(20)
    rot = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    affine = np.eye(4)
    affine[:3, :3] = rot @ np.diag([-3.0, 3.0, 3.0])  # oblique and left-right flipped
    affine[:3, 3] = [10.0, -60.0, -70.0]
    path = _marked(tmp_path, affine)
    img, _ = load_validated(path)
    assert nb.aff2axcodes(img.affine) == ("R", "A", "S")
    assert not np.allclose(img.affine[:3, :3], np.diag(np.diag(img.affine[:3, :3])))  # still oblique
    found = tuple(int(i) for i in np.argwhere(img.get_fdata(dtype=np.float32) == 1000.0)[0])
    np.testing.assert_allclose(_world(img.affine, found), _world(affine, MARKER), atol=1e-4)


# --------------------------------------------------------------------------------------------
# BrainMask
# --------------------------------------------------------------------------------------------
def _fake_extraction(monkeypatch, threshold: float) -> list:
    """Replace MindGrab by a threshold (the routing is tested here, MindGrab in test_brain_extraction)."""
    import SimpleITK as sitk

    import bids_infantage.models.brain_extraction as extraction

    calls = []

    def fake_extract(image, n_threads=1):
        calls.append(image.GetSize())
        mask = sitk.Cast(image > threshold, sitk.sitkUInt8)
        return mask, {"spacing_mm": 1.4, "shape": [1, 1, 1], "second_component": 0.0,
                      "holes_filled": 0.0, "seconds": 0.0}

    monkeypatch.setattr(extraction, "extract_brain", fake_extract)
    return calls


def test_head_with_skull_goes_to_brain_extraction(tmp_path, brain, monkeypatch):
    """Noisy air (a real head's background): brain extraction runs, not the non-zero mask; a
    constant background with a skull-like shell is taken as skull-stripped, and the mask QC
    flags the mask in pieces."""
    data, affine = _brain_data(brain)
    g = np.indices(data.shape) - 23.5
    r = np.sqrt((g ** 2).sum(0))
    shell = np.where((r > 21) & (r < 23.5), 300.0, 0.0)
    noise = np.random.default_rng(0).uniform(1.0, 9.0, data.shape)
    path = _save(data + shell + noise, tmp_path / "sub-01_T1w.nii.gz", affine)
    work = tmp_path / "work"
    work.mkdir()
    calls = _fake_extraction(monkeypatch, 20.0)
    out = BrainMask(in_file=str(path), source_file="sub-01_T1w.nii.gz").run(cwd=str(work)).outputs
    assert out.method == "mindgrab" and len(calls) == 1

    path = _save(data + shell + 5.0, tmp_path / "sub-02_T1w.nii.gz", affine)
    out = BrainMask(in_file=str(path), source_file="sub-02_T1w.nii.gz").run(cwd=str(work)).outputs
    assert out.method == "skull-stripped input" and len(calls) == 1
    assert any("brain mask in pieces" in w for w in out.warnings)


def test_force_extracts_skull_stripped_images_too(tmp_path, brain, monkeypatch):
    calls = _fake_extraction(monkeypatch, 0.0)
    work = tmp_path / "work"
    work.mkdir()
    out = BrainMask(in_file=str(brain), skull_strip="force").run(cwd=str(work)).outputs
    assert out.method == "mindgrab" and len(calls) == 1
    out = BrainMask(in_file=str(brain), skull_strip="skip").run(cwd=str(work)).outputs
    assert out.method == "skull-stripped input" and len(calls) == 1


def test_offset_background_is_subtracted(tmp_path, brain):
    """A skull-stripped brain written with background 16 gives the same mask and brain image
    as the original (the background level is removed)."""
    import SimpleITK as sitk

    data, affine = _brain_data(brain)
    shifted = _save(data + 16.0, tmp_path / "shifted.nii.gz", affine)
    outs = []
    for k, path in enumerate((brain, shifted)):
        work = tmp_path / f"work{k}"
        work.mkdir()
        outs.append(BrainMask(in_file=str(path)).run(cwd=str(work)).outputs)
    assert [o.method for o in outs] == ["skull-stripped input"] * 2
    a, b = (sitk.GetArrayFromImage(sitk.ReadImage(o.out_file)) for o in outs)
    np.testing.assert_allclose(a, b, atol=1e-3)
    assert outs[0].volume_ml == outs[1].volume_ml


def test_inherited_skullstripped_metadata_is_honoured(tmp_path, brain, monkeypatch):
    """``SkullStripped: true`` in a dataset-level ``T1w.json`` (BIDS inheritance) applies to
    every T1w: a brain with a non-zero background is then masked, not refused as a head."""
    from bids.layout import BIDSLayout

    root = make_bids(tmp_path, {"01": {"age": 6, "images": ("T1w",)},
                                "02": {"age": 9, "images": ("T1w",)}})
    (root / "T1w.json").write_text(json.dumps({"SkullStripped": True}))
    (root / "sub-02" / "anat" / "sub-02_T1w.json").write_text(json.dumps({"SkullStripped": False}))
    units = collect_sessions(BIDSLayout(str(root), validate=False))
    assert [u["skull_stripped"] for u in units] == [{"t1w": True}, {"t1w": False}]

    data, affine = _brain_data(brain)
    path = _save(data + 5.0 * (data == 0), tmp_path / "offset.nii.gz", affine)  # background 5
    work = tmp_path / "work"
    work.mkdir()
    result = BrainMask(in_file=str(path), source_file=units[0]["t1w"],
                       skull_stripped=True).run(cwd=str(work))
    assert result.outputs.volume_ml > 100
    assert result.outputs.method == "skull-stripped input"
    # SkullStripped: false -> the image is a head: brain extraction runs
    calls = _fake_extraction(monkeypatch, 5.0)
    result = BrainMask(in_file=str(path), source_file=units[1]["t1w"],
                       skull_stripped=False).run(cwd=str(work))
    assert result.outputs.method == "mindgrab" and calls == [data.shape]


def test_tiny_mask_is_refused(tmp_path):
    # ~34 ml, trusted as skull-stripped
    path = make_brain(tmp_path / "sub-01_T1w.nii.gz", semi_axes_mm=(20.0, 20.0, 20.0))
    work = tmp_path / "work"
    work.mkdir()
    raise_input_error(lambda: BrainMask(in_file=str(path), source_file=str(path),
                                         skull_strip="skip").run(cwd=str(work)),
                      str(path), "brain mask is only", "check the image or the mask")


def _snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.stat().st_size)
            for p in sorted([folder, *folder.rglob("*")])}


def test_input_dataset_is_never_written(tmp_path):
    root = tmp_path / "bids"
    t1w = make_brain(root / "sub-01" / "anat" / "sub-01_T1w.nii.gz")
    (root / "sub-01" / "anat" / "sub-01_T1w.json").write_text(json.dumps({"SkullStripped": True}))
    before = _snapshot(root)
    modes = {p: p.stat().st_mode for p in [root, *root.rglob("*")]}
    for p in modes:  # chmod -R a-w
        p.chmod(stat.S_IMODE(modes[p]) & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    work = tmp_path / "work"
    work.mkdir()
    cwd = Path.cwd()
    os.chdir(work)  # relative writes, if any, would land here rather than in the input
    try:
        img, warnings = load_validated(t1w)
        validated = work / "validated.nii.gz"
        img.to_filename(str(validated))
        result = BrainMask(in_file=str(validated), source_file=str(t1w)).run(cwd=str(work))
        assert 300 < result.outputs.volume_ml < 1500
        (work / "direct").mkdir()
        BrainMask(in_file=str(t1w), source_file=str(t1w)).run(cwd=str(work / "direct"))
    finally:
        os.chdir(cwd)
        for p, mode in modes.items():
            p.chmod(stat.S_IMODE(mode))
    assert _snapshot(root) == before


# --------------------------------------------------------------------------------------------
# chronological_age
# --------------------------------------------------------------------------------------------
def test_age_missing(tmp_path):
    root = make_bids(tmp_path, {"01": {}}, images=False)  # age n/a
    assert chronological_age(root, "01") == (None, "not found")
    assert chronological_age(root, "02") == (None, "not found")  # no row at all
    (root / "participants.tsv").unlink()
    assert chronological_age(root, "01") == (None, "not found")


@pytest.mark.parametrize("value", ["abc", "", "n/a", "six", "nan"])
def test_age_malformed(tmp_path, value):
    root = make_bids(tmp_path, {"01": {"age": value}}, images=False)
    assert chronological_age(root, "01") == (None, "not found")


def test_age_with_a_byte_order_mark_and_unreadable_ages_warn(tmp_path, caplog):
    """A participants.tsv saved with a UTF-8 byte-order mark (spreadsheet exports) still
    gives its ages (#19 item 2); an age that cannot be read (``6m``) is logged with the
    file, the subject and the value instead of vanishing silently."""
    import logging

    root = make_bids(tmp_path, {"01": {}, "02": {}}, images=False)
    (root / "participants.tsv").write_bytes(
        "participant_id\tage\nsub-01\t9\nsub-02\t6m\n".encode("utf-8-sig"))
    (root / "participants.json").write_text(json.dumps({"age": {"Units": "months"}}))
    assert chronological_age(root, "01") == (9.0, str(root / "participants.tsv"))
    with caplog.at_level(logging.WARNING, logger="bids_infantage"):
        assert chronological_age(root, "02") == (None, "not found")
    text = caplog.text
    assert "participants.tsv" in text and "sub-02" in text and "'6m'" in text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="bids_infantage"):
        chronological_age(root, "01")
    assert "not a number" not in caplog.text


@pytest.mark.parametrize("column, value, units, months", [
    ("age_weeks", "26", None, 5.98),
    ("age_years", "1.5", None, 18.0),
    ("age_months", "9", None, 9.0),
    ("age_days", "365.25", None, 12.0),
    ("age", "9", "months", 9.0),
    ("age", "52.1775", "weeks", 12.0),
    ("age", "2", "years", 24.0),
    ("age", "1", "absent", 12.0),  # BIDS: age in years when the sidecar says nothing
])
def test_age_units(tmp_path, column, value, units, months):
    root = make_bids(tmp_path, {"01": {}}, images=False)
    (root / "participants.tsv").write_text(f"participant_id\t{column}\nsub-01\t{value}\n")
    if units == "absent":
        (root / "participants.json").unlink()
    elif units:
        (root / "participants.json").write_text(json.dumps({"age": {"Units": units}}))
    age, source = chronological_age(root, "01")
    assert age == pytest.approx(months, abs=0.01)
    assert source == str(root / "participants.tsv")


def test_age_precedence_scans_sessions_participants(tmp_path):
    root = make_bids(tmp_path, {"01": {"age": 9, "sessions": {"a": {"age": 6}, "b": {"age": "abc"}}}},
                     images=False)
    image = root / "sub-01" / "ses-a" / "anat" / "sub-01_ses-a_T2w.nii.gz"
    scans = root / "sub-01" / "ses-a" / "sub-01_ses-a_scans.tsv"
    scans.write_text("filename\tage_months\nanat/sub-01_ses-a_T2w.nii.gz\t3\n")
    sessions = root / "sub-01" / "sub-01_sessions.tsv"
    assert chronological_age(root, "01", "a", image) == (3.0, str(scans))
    assert chronological_age(root, "01", "a") == (6.0, str(sessions))  # no image: sessions.tsv
    other = root / "sub-01" / "ses-a" / "anat" / "sub-01_ses-a_T1w.nii.gz"
    assert chronological_age(root, "01", "a", other) == (6.0, str(sessions))  # no scans row
    # malformed age in sessions.tsv falls back to participants.tsv
    assert chronological_age(root, "01", "b") == (9.0, str(root / "participants.tsv"))


# --------------------------------------------------------------------------------------------
# collect_sessions / select_run
# --------------------------------------------------------------------------------------------
def _layout(root):
    from bids import BIDSLayout

    return BIDSLayout(str(root), validate=False)


@pytest.mark.parametrize("present, missing", [("T1w", "t2w"), ("T2w", "t1w")])
def test_missing_modality_gives_none(tmp_path, present, missing):
    root = make_bids(tmp_path, {"01": {"images": (present,)}}, images=False)
    (unit,) = collect_sessions(_layout(root))
    assert unit[missing] is None
    assert unit[present.lower()].endswith(f"sub-01_{present}.nii.gz")
    assert unit["warnings"] == []


def test_session_without_t1w_or_t2w_is_skipped(tmp_path, caplog):
    root = make_bids(tmp_path, {"01": {"sessions": {"a": {}, "b": {"images": ("FLAIR",)}}}},
                     images=False)
    with caplog.at_level("WARNING", logger="bids_infantage"):
        units = collect_sessions(_layout(root))
    assert [(u["subject"], u["session"]) for u in units] == [("01", "a")]
    assert any("ses-b" in r.getMessage() and "skipped" in r.getMessage() for r in caplog.records)


def test_duplicate_runs_pick_highest_index(tmp_path):
    root = make_bids(tmp_path, {"01": {"images": ("run-1_T1w", "run-2_T1w", "run-10_T1w", "T2w")}},
                     images=False)
    (unit,) = collect_sessions(_layout(root))
    assert Path(unit["t1w"]).name == "sub-01_run-10_T1w.nii.gz"  # 10 > 2 numerically
    assert unit["warnings"] == ["3 runs found; using sub-01_run-10_T1w.nii.gz (highest run index)"]
    chosen, warning = select_run(["b/sub-01_T1w.nii.gz", "a/sub-01_T1w.nii.gz"])
    assert chosen == "b/sub-01_T1w.nii.gz" and "2 runs found" in warning
    assert select_run(["x_T1w.nii.gz"]) == ("x_T1w.nii.gz", None)
    assert select_run([]) == (None, None)


def test_empty_dataset(tmp_path):
    root = make_bids(tmp_path, {}, images=False)
    raise_input_error(lambda: collect_sessions(_layout(root)), str(root), "no T1w or T2w images",
                      "anat/")


def test_unknown_participant_label(tmp_path):
    root = make_bids(tmp_path, ["01", "02"], images=False)
    message = raise_input_error(lambda: collect_sessions(_layout(root), ["99"]), "99", str(root))
    assert message.endswith("available: 01, 02.")


def test_unknown_session_label(tmp_path):
    root = make_bids(tmp_path, {"01": {"sessions": {"a": {}, "b": {}}}}, images=False)
    message = raise_input_error(lambda: collect_sessions(_layout(root), None, ["zz"]), "zz", str(root))
    assert message.endswith("available: a, b.")


# --------------------------------------------------------------------------------------------
# parse_args
# --------------------------------------------------------------------------------------------
@pytest.fixture
def bids_root(tmp_path):
    return make_bids(tmp_path, images=False)


def test_bids_dir_missing(tmp_path, capsys):
    missing = tmp_path / "nope"
    parser_error(capsys, [missing, tmp_path / "out", "participant", "-w", tmp_path / "work"],
                 str(missing), "does not exist")


@pytest.mark.parametrize("where", ["input", "inside"])
def test_output_dir_in_input(tmp_path, bids_root, capsys, where):
    out = bids_root if where == "input" else bids_root / "derivatives" / "infantage"
    parser_error(capsys, [bids_root, out, "participant", "-w", tmp_path / "work"],
                 str(out), "choose a folder outside the BIDS dataset")
    assert not (bids_root / "derivatives").exists()


@pytest.mark.parametrize("content, owner", [
    ({"Name": "fMRIPrep - fMRI PREProcessing workflow", "DatasetType": "derivative",
      "GeneratedBy": [{"Name": "fMRIPrep", "Version": "24.1.0"}]}, "fMRIPrep"),
    ("{not json", "an unknown tool"),
])
def test_output_dir_of_another_pipeline_is_refused(tmp_path, bids_root, capsys, content, owner):
    """An output folder holding another app's derivatives is not taken over (#19 item 5):
    one line naming the owner and a folder to use, nothing written there."""
    out = tmp_path / "derivatives"
    out.mkdir()
    desc = out / "dataset_description.json"
    desc.write_text(content if isinstance(content, str) else json.dumps(content))
    before = _snapshot(out)
    parser_error(capsys, [bids_root, out, "participant", "-w", tmp_path / "work"],
                 str(out), f"holds derivatives of {owner}", str(out / "bids-infantage"))
    assert _snapshot(out) == before


def test_output_dir_of_an_earlier_run_is_accepted(tmp_path, bids_root):
    out = tmp_path / "out"
    out.mkdir()
    (out / "dataset_description.json").write_text(json.dumps(
        {"Name": "bids-infantage: infant brain age estimates",
         "GeneratedBy": [{"Name": "bids-infantage", "Version": "0.1.0"}]}))
    assert parse_args([str(bids_root), str(out), "participant", "-w", str(tmp_path / "work")])


def test_work_dir_inside_input(tmp_path, bids_root, capsys):
    work = bids_root / "work"
    parser_error(capsys, [bids_root, tmp_path / "out", "participant", "-w", work],
                 str(work), "choose another (-w)")
    assert not work.exists()


def test_output_dir_read_only(tmp_path, bids_root, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as root: chmod cannot make a folder unwritable")
        out = locked / "out"
        parser_error(capsys, [bids_root, out, "participant", "-w", tmp_path / "work"],
                     str(out), "cannot be written", "check permissions or choose another folder")
    finally:
        locked.chmod(0o700)


def test_output_dir_cannot_be_created(tmp_path, bids_root, capsys):
    """A folder below a regular file cannot be created, even by root."""
    afile = tmp_path / "afile"
    afile.write_text("")
    out = afile / "out"
    parser_error(capsys, [bids_root, out, "participant", "-w", tmp_path / "work"],
                 str(out), "cannot be written", "check permissions or choose another folder")


def test_valid_command_line_passes(tmp_path, bids_root):
    opts = parse_args([str(bids_root), str(tmp_path / "out"), "participant",
                       "--participant-label", "sub-01", "-w", str(tmp_path / "work")])
    assert opts.participant_label == ["01"]
    assert (tmp_path / "out").is_dir()


def test_second_run_on_the_same_subject_is_refused(tmp_path, capsys):
    """While a run holds a subject's lock, another run on that subject exits 2 with one line
    and writes nothing (#19 item 6); a run on another subject shares the folder (a SLURM
    array task per participant); a run that ends removes its locks."""
    from filelock import FileLock

    from bids_infantage.cli.run import main
    from bids_infantage.utils.locks import LOCK_DIR

    root = make_bids(tmp_path, {"01": {"age": 6}, "02": {"age": 9}}, images=False)
    out = tmp_path / "out"
    (out / LOCK_DIR).mkdir(parents=True)
    held = FileLock(str(out / LOCK_DIR / "sub-01.lock"))
    held.acquire(timeout=0)
    base = [str(root), str(out), "participant", "-w", str(tmp_path / "work"), "--skip-bids-validation"]
    try:
        files = lambda: {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}  # noqa: E731
        before = files()
        for labels in (["01"], ["01", "02"], []):  # [] = every participant
            rc = main(base + (["--participant-label", *labels] if labels else []))
            err = capsys.readouterr().err
            assert rc == 2, err
            errors = [ln for ln in err.splitlines() if "error:" in ln]
            assert len(errors) == 1, err
            assert_one_line(errors[0], str(out), "another bids-infantage run is writing sub-01 ",
                            "wait for it to finish")
            assert files() == before  # (the folder's mtime moves: parse_args probes writability)
        # the other run's copies in progress: in its subject and at the shared top level
        theirs = [out / "sub-01" / "anat" / ".sub-01_brainage.tsv.abc.partial",
                  out / ".dataset_description.json.def.partial"]
        for path in theirs:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("half")
        stale = out / "sub-02" / "anat" / ".sub-02_brainage.tsv.old.partial"  # ours, left over
        stale.parent.mkdir(parents=True)
        stale.write_text("half")
        rc = main(base + ["--participant-label", "02", "--reports-only"])
        assert rc == 0 and "another bids-infantage run" not in capsys.readouterr().err
        assert all(path.exists() for path in theirs) and not stale.exists()
        assert not (out / LOCK_DIR / "sub-02.lock").exists()
        group = FileLock(str(out / LOCK_DIR / "group.lock"))
        group.acquire(timeout=0)
        rc = main([str(root), str(out), "group", "-w", str(tmp_path / "work")])
        assert rc == 2 and "another bids-infantage run is writing group" in capsys.readouterr().err
        group.release()
    finally:
        held.release()
    # unlocked: the run proceeds (here to its own one-line error) and leaves no lock behind
    rc = main(base + ["--participant-label", "zz"])
    assert rc == 2 and "another bids-infantage run" not in capsys.readouterr().err
    main(base + ["--participant-label", "01", "--reports-only"])
    assert not (out / LOCK_DIR / "sub-01.lock").exists()


# --------------------------------------------------------------------------------------------
# #19 items 8 and 9: one-line errors (exit 2) instead of tracebacks; unchecked values
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("option, value, fix", [
    ("--nprocs", "0", "give 1 or more processes"),
    ("--omp-nthreads", "0", "give 1 or more threads"),
    ("--mem-gb", "-1", "give the memory in GB"),
    ("--nprocs", "two", "give 1 or more processes"),
])
def test_resource_values_must_be_positive(tmp_path, bids_root, capsys, option, value, fix):
    parser_error(capsys, [bids_root, tmp_path / "out", "participant", "-w", tmp_path / "work",
                          option, value], option, repr(value), fix)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("where", ["same", "inside", "above"])
def test_work_dir_and_output_dir_must_not_overlap(tmp_path, bids_root, capsys, where):
    out = tmp_path / "out"
    work = {"same": out, "inside": out / "work", "above": tmp_path}[where]
    parser_error(capsys, [bids_root, out, "participant", "-w", work],
                 str(work), "overlap", "choose a separate -w")
    assert not out.exists()


def test_work_dir_cannot_be_created(tmp_path, bids_root, capsys):
    """A read-only work folder used to end in a traceback (OSError on nipype-config); a
    folder below a regular file cannot be created, even by root."""
    afile = tmp_path / "afile"
    afile.write_text("")
    work = afile / "work"
    parser_error(capsys, [bids_root, tmp_path / "out", "participant", "-w", work],
                 str(work), "cannot be written", "(-w)")
    assert not (tmp_path / "out").exists()  # the output folder this run created is not left


@pytest.mark.parametrize("content, fragments", [
    ("plugin: !!python/object/apply:os.system ['echo pwned']\n", ("not plain YAML", "!!python")),
    ("plugin: MultiProcess\nplugin_args: {n_procs: 2}\n", ("unknown Nipype plugin 'MultiProcess'", "SLURM")),
    ("- MultiProc\n", ("must be a mapping",)),
    ("plugin: SLURM\nplugin_args: [1, 2]\n", ("must be a mapping",)),
])
def test_plugin_file_is_plain_yaml_with_a_known_plugin(tmp_path, bids_root, capsys, content, fragments):
    plugin = tmp_path / "plugin.yml"
    plugin.write_text(content)
    parser_error(capsys, [bids_root, tmp_path / "out", "participant", "-w", tmp_path / "work",
                          "--plugin-file", plugin], str(plugin), *fragments)
    assert not (tmp_path / "out").exists()


def test_plugin_file_accepted(tmp_path):
    from bids_infantage.config import read_plugin_file

    path = tmp_path / "plugin.yml"
    path.write_text("plugin: SLURMGraph\nplugin_args:\n  sbatch_args: --time=2:00:00\n")
    assert read_plugin_file(path) == {"plugin": "SLURMGraph",
                                      "plugin_args": {"sbatch_args": "--time=2:00:00"}}
    path.write_text("plugin_args: {n_procs: 2}\n")
    assert read_plugin_file(path)["plugin"] == "MultiProc"


def _run_main(capsys, argv) -> tuple[int, list[str]]:
    from bids_infantage.cli.run import main

    rc = main([str(a) for a in argv])
    err = capsys.readouterr().err
    return rc, [ln for ln in err.splitlines() if "error:" in ln or "Traceback" in ln]


def test_malformed_sidecar_json(tmp_path, capsys):
    """With --skip-bids-validation a broken sidecar used to give 40 lines from pybids and an
    empty output folder: now one line naming the sidecar, exit 2, no folder left."""
    root = make_bids(tmp_path, images=False)
    sidecar = root / "sub-01" / "anat" / "sub-01_T1w.json"
    sidecar.write_text('{"SkullStripped": true,')
    out = tmp_path / "out"
    rc, errors = _run_main(capsys, [root, out, "participant", "-w", tmp_path / "work",
                                    "--skip-bids-validation"])
    assert rc == 2 and len(errors) == 1, errors
    assert_one_line(errors[0], str(sidecar), "is not valid JSON", "fix or remove this sidecar")
    assert not out.exists()


def _degenerate(path: Path, **fields) -> Path:
    """A valid 24^3 brain at 3 mm whose header fields are then overwritten in place."""
    import io

    make_brain(path, shape=(24, 24, 24), zooms=(3.0, 3.0, 3.0))
    img = nb.load(str(path))
    plain = path.with_suffix("")  # .nii: the header is the file's first 348 bytes
    nb.save(img, str(plain))
    raw = bytearray(plain.read_bytes())
    hdr = nb.Nifti1Header.from_fileobj(io.BytesIO(bytes(raw)))
    for key, value in fields.items():
        hdr._structarr[key] = value
    buf = io.BytesIO()
    hdr.write_to(buf)
    raw[:348] = buf.getvalue()[:348]
    path.unlink()
    with gzip.open(path, "wb") as fh:
        fh.write(bytes(raw))
    plain.unlink()
    return path


DEGENERATE = {
    "sform-zero-scale": dict(srow_x=[0.0, 0.0, 0.0, 0.0], pixdim=[1, 0, 3, 3, 1, 1, 1, 1]),
    "sform-nan": dict(srow_y=[0.0, np.nan, 0.0, 0.0]),
    "qform-nan": dict(sform_code=0, qform_code=1, quatern_b=np.nan),
    "qform-zero-scale": dict(sform_code=0, qform_code=1, pixdim=[1, 3, 0, 3, 1, 1, 1, 1]),
}


@pytest.mark.parametrize("case", sorted(DEGENERATE))
def test_degenerate_affine_is_refused_with_the_file_name(tmp_path, case):
    path = _degenerate(tmp_path / "sub-01_T1w.nii.gz", **DEGENERATE[case])
    raise_input_error(lambda: load_validated(path), str(path), "is degenerate",
                      "fslorient -copyqform2sform")


def test_degenerate_affine_stops_the_run_before_anything_is_written(tmp_path, capsys):
    """The header pre-flight (check_header) refuses the run before the workflow starts:
    exit 2, one line naming the file, and nothing written (not half a set of outputs)."""
    root = make_bids(tmp_path)
    t2w = root / "sub-01" / "anat" / "sub-01_T2w.nii.gz"
    _degenerate(t2w, **DEGENERATE["sform-nan"])
    out = tmp_path / "out"
    rc, errors = _run_main(capsys, [root, out, "participant", "-w", tmp_path / "work",
                                    "--skip-bids-validation", "--nprocs", "1"])
    assert rc == 2 and len(errors) == 1, errors
    assert_one_line(errors[0], str(t2w), "is degenerate")
    assert not out.exists()
