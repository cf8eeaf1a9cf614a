"""Reportlets, their interfaces, the HTML report and its screenshot (tiny synthetic images)."""
from __future__ import annotations

import doctest
import importlib.util
import json
import re
import struct
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import nibabel as nb
import numpy as np
import pytest

from bids_infantage.reports import agechart, participant, reportlets, tables

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "screenshot_report.py"
CHROMIUM = Path("/usr/bin/chromium")
NORMS = {"0": [450.0, 50.0], "3": [600.0, 60.0], "6": [700.0, 65.0], "12": [850.0, 80.0],
         "24": [1000.0, 90.0]}
ROW = {
    "participant_id": "sub-01", "session_id": "n/a", "model_configuration": "t1w+t2w+ratio",
    "predicted_age_months": "10.24", "predicted_age_sd_months": "1.10",
    "predicted_age_lower_months": "8.10", "predicted_age_upper_months": "12.30",
    "interval_coverage": "0.9", "chronological_age_months": "9.00",
    "brain_age_gap_months": "1.24", "brain_volume_ml": "700.0", "brain_volume_z": "-1.30",
    "qc_out_of_range": "false", "qc_flags": "n/a", "t1w_t2w_mask_dice": "0.951",
    "normalization_mask_dice": "0.902", "model_name": "infantage-test",
    "model_sha256": "ab" * 32,
}
DESCS = ("brainmask", "t1w2t2w", "normalization", "ratio", "saliency", "regional", "agechart")


# --------------------------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------------------------
def _save(data, path, zooms=(2.0, 2.0, 2.5)):
    nb.save(nb.Nifti1Image(np.asarray(data), np.diag([*zooms, 1.0])), str(path))
    return str(path)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """32^3 ellipsoid 'brain' and the derived images every reportlet needs (same grid)."""
    d = tmp_path_factory.mktemp("images")
    n = 32
    g = np.mgrid[:n, :n, :n].astype(np.float32) - (n - 1) / 2
    r = np.sqrt((g[0] / 12) ** 2 + (g[1] / 14) ** 2 + (g[2] / 10) ** 2)
    mask = (r < 1).astype(np.uint8)
    t2w = np.where(r < 1, 100 * (1 - 0.5 * r), 5).astype(np.float32)
    t1w = np.where(r < 1, 60 + 40 * r, 5).astype(np.float32)
    return {
        "anat": _save(t2w, d / "t2w.nii.gz"),
        "mask": _save(mask, d / "mask.nii.gz"),
        "bias": _save((1 + 0.01 * g[0]).astype(np.float32), d / "bias.nii.gz"),
        "before": _save(np.roll(t1w, 3, axis=0), d / "before.nii.gz"),
        "after": _save(t1w, d / "after.nii.gz"),
        "ratio": _save(np.where(r < 1, t1w / np.maximum(t2w, 1), 0).astype(np.float32),
                       d / "ratio.nii.gz"),
        "saliency": _save(np.clip(1 - r, 0, 1).astype(np.float32), d / "saliency.nii.gz"),
        "ref_image": _save(t2w / t2w.max(), d / "ref_image.nii.gz", zooms=(3.0, 3.0, 3.0)),
        "ref_mask": _save(mask, d / "ref_mask.nii.gz", zooms=(3.0, 3.0, 3.0)),
        "other_grid": _save(mask[:30], d / "other_grid.nii.gz"),
    }


def check_svg(path) -> ElementTree.Element:
    """Assert ``path`` is a well-formed SVG with drawn content; return its root."""
    path = Path(path)
    assert path.is_file() and path.suffix == ".svg"
    text = path.read_text()
    assert "<svg" in text
    root = ElementTree.fromstring(text.encode())
    assert root.tag.endswith("svg")
    tags = [el.tag.rsplit("}", 1)[-1] for el in root.iter()]
    assert tags.count("image") + tags.count("path") >= 1
    return root


def n_tags(root, name) -> int:
    return sum(el.tag.rsplit("}", 1)[-1] == name for el in root.iter())


# --------------------------------------------------------------------------------------------
# reportlets
# --------------------------------------------------------------------------------------------
def test_plot_mask(images, tmp_path):
    out = reportlets.plot_mask(images["anat"], images["mask"], tmp_path / "m.svg")
    assert out == str((tmp_path / "m.svg").absolute())
    root = check_svg(out)
    assert n_tags(root, "image") == 9  # 3 orientations x 3 cuts
    assert reportlets.MASK_COLOR in Path(out).read_text()  # contour drawn

    out2 = reportlets.plot_mask(images["anat"], images["mask"], tmp_path / "mb.svg",
                                bias_field_file=images["bias"])
    root2 = check_svg(out2)
    assert n_tags(root2, "image") > n_tags(root, "image")  # second row (+ colorbar)
    assert "bias field" in Path(out2).read_text()


def test_plot_mask_rejects_other_grid(images, tmp_path):
    with pytest.raises(ValueError, match="same grid"):
        reportlets.plot_mask(images["anat"], images["other_grid"], tmp_path / "x.svg")


def test_plot_registration(images, tmp_path):
    out = reportlets.plot_registration(images["anat"], images["before"], images["after"],
                                       tmp_path / "r.svg")
    root = check_svg(out)
    text = Path(out).read_text()
    assert "before" in text and "after" in text
    assert n_tags(root, "image") == 18  # two rows
    assert any(c in text for c in reportlets.EDGE_COLORS)  # T1w contours drawn


def test_plot_normalization(images, tmp_path):
    out = reportlets.plot_normalization(images["ref_image"], images["ref_mask"],
                                        tmp_path / "n.svg")
    check_svg(out)
    assert reportlets.MASK_COLOR in Path(out).read_text()


def test_plot_ratio(images, tmp_path):
    out = reportlets.plot_ratio(images["ratio"], images["mask"], tmp_path / "q.svg")
    root = check_svg(out)
    assert "T1w/T2w ratio" in Path(out).read_text()  # colorbar label
    assert n_tags(root, "image") >= 10  # 9 slices + colorbar


def test_plot_saliency(images, tmp_path):
    out = reportlets.plot_saliency(images["anat"], images["saliency"], tmp_path / "s.svg")
    root = check_svg(out)
    assert n_tags(root, "image") >= 10  # 9 panels (anatomy + overlay composited) + colorbar
    assert "Grad-CAM" in Path(out).read_text()  # colorbar label


@pytest.mark.parametrize("chrono", [9.0, None])
def test_plot_age_chart(tmp_path, chrono):
    out = agechart.plot_age_chart(10.2, 1.1, 8.1, 12.3, chrono, tmp_path / "a.svg",
                                  volume_ml=700.0, volume_norms=NORMS)
    check_svg(out)
    text = Path(out).read_text()
    assert "brain volume (ml)" in text
    assert ("chronological age unknown" in text) == (chrono is None)


def test_plot_age_chart_extends_axes(tmp_path):
    out = agechart.plot_age_chart(30.0, None, None, None, None, tmp_path / "a.svg")
    text = Path(out).read_text()
    assert "chronological age unknown" in text and "brain volume" not in text
    assert ">30<" in text  # tick beyond 24 months


# --------------------------------------------------------------------------------------------
# interfaces
# --------------------------------------------------------------------------------------------
def test_interfaces(images, tmp_path, monkeypatch):
    from bids_infantage.interfaces import reports as ifaces

    tsv = tmp_path / "sub-01_brainage.tsv"
    tsv.write_text("\t".join(ROW) + "\n" + "\t".join(ROW.values()) + "\n")
    bundle = tmp_path / "bundle.json"
    bundle.write_text(json.dumps({"volume_norms_ml": NORMS}))
    monkeypatch.chdir(tmp_path)
    cases = [
        (ifaces.MaskReportlet, dict(anat_file=images["anat"], mask_file=images["mask"],
                                    bias_field_file=images["bias"])),
        (ifaces.RegistrationReportlet, dict(fixed_file=images["anat"],
                                            moving_before_file=images["before"],
                                            moving_after_file=images["after"])),
        (ifaces.NormalizationReportlet, dict(image_file=images["ref_image"],
                                             reference_mask_file=images["ref_mask"])),
        (ifaces.RatioReportlet, dict(ratio_file=images["ratio"], mask_file=images["mask"])),
        (ifaces.SaliencyReportlet, dict(anat_file=images["anat"],
                                        saliency_file=images["saliency"])),
        (ifaces.AgeChartReportlet, dict(brainage_tsv=str(tsv), bundle_json=str(bundle))),
    ]
    names = set()
    for cls, kwargs in cases:
        res = cls(**kwargs).run()
        out = Path(res.outputs.out_report)
        assert out.parent == tmp_path and out.suffix == ".svg", cls.__name__
        check_svg(out)
        names.add(out.name)
    assert len(names) == len(cases)  # default names do not collide
    assert "BCP" in (tmp_path / "agechart.svg").read_text()  # norms read from bundle_json


# --------------------------------------------------------------------------------------------
# HTML report
# --------------------------------------------------------------------------------------------
def make_derivatives(root: Path, images, *, session=None, row=None, skip=(), crash=False,
                     citation=True) -> Path:
    """Fake bids-infantage output: brain-age TSV, figures, CITATION.md, crash file."""
    row = dict(ROW, **(row or {}))
    prefix = tables.bids_prefix("01", session)
    anat = root / "sub-01" / (f"ses-{session}" if session else "") / "anat"
    anat.mkdir(parents=True)
    (anat / f"{prefix}_brainage.tsv").write_text(
        "\t".join(row) + "\n" + "\t".join(row.values()) + "\n")
    figs = root / "sub-01" / "figures"
    figs.mkdir(parents=True)
    makers = {
        "brainmask": lambda p: reportlets.plot_mask(images["anat"], images["mask"], p,
                                                    images["bias"]),
        "t1w2t2w": lambda p: reportlets.plot_registration(images["anat"], images["before"],
                                                          images["after"], p),
        "normalization": lambda p: reportlets.plot_normalization(images["ref_image"],
                                                                 images["ref_mask"], p),
        "ratio": lambda p: reportlets.plot_ratio(images["ratio"], images["mask"], p),
        "saliency": lambda p: reportlets.plot_saliency(images["anat"], images["saliency"], p),
        # the report only embeds the file: any reportlet stands in for the regional panel here
        "regional": lambda p: reportlets.plot_saliency(images["anat"], images["saliency"], p),
        "agechart": lambda p: agechart.plot_age_chart(10.24, 1.1, 8.1, 12.3, 9.0, p,
                                                      volume_ml=700.0, volume_norms=NORMS),
    }
    for desc, make in makers.items():
        if desc not in skip:
            make(figs / f"{prefix}_desc-{desc}_T2w.svg")
    if citation:
        (root / "logs").mkdir()
        (root / "logs" / "CITATION.md").write_text(
            "# Methods\n\nBrain age was estimated with *bids-infantage* 0.1.0 <test>.\n")
    if crash:
        log = root / "sub-01" / "log" / "20240101-000000_abcd"
        log.mkdir(parents=True)
        (log / "crash-20240101-n4.txt").write_text("Traceback: N4 failed <boom>\n")
    return root


@pytest.fixture(scope="module")
def report_dirs(images, tmp_path_factory):
    """Two fake derivatives trees (plain and out-of-range) and their reports."""
    ok = make_derivatives(tmp_path_factory.mktemp("ok"), images, crash=True)
    bad = make_derivatives(tmp_path_factory.mktemp("bad"), images, session="1",
                           row={"qc_out_of_range": "true", "qc_flags": "age_above_range;low_dice",
                                "predicted_age_months": "31.5", "chronological_age_months": "n/a",
                                "brain_age_gap_months": "n/a"},
                           skip=("saliency",), citation=False)
    return {
        "ok": participant.generate_report(ok, "01"),
        "bad": participant.generate_report(bad, "sub-01", session="ses-1"),
    }


def test_report_content(report_dirs):
    out = report_dirs["ok"]
    assert out.name == "sub-01.html" and out.is_file()
    text = out.read_text()
    assert "10.2 months" in text  # predicted age
    for section in participant.load_spec()["sections"]:
        assert f"<h2>{section['title']}" in text
    assert text.count('<svg class="reportlet"') == len(DESCS)
    assert participant.OUT_OF_RANGE_BANNER not in text
    assert "Methods" in text and "&lt;test&gt;" in text  # escaped CITATION.md
    assert '<section id="errors">' in text and "crash-20240101-n4.txt" in text
    assert "&lt;boom&gt;" in text
    assert "Figure not found" not in text


def test_report_self_contained(report_dirs):
    text = report_dirs["ok"].read_text()
    assert not re.search(r'(src|href)="(https?:)?//', text)  # no CDN or remote resource
    assert "<link" not in text and "<script" not in text
    ids = re.findall(r'\bid="([^"]+)"', text)
    assert len(ids) == len(set(ids)), "element ids collide between inlined SVGs"


def test_report_out_of_range(report_dirs):
    out = report_dirs["bad"]
    assert out.name == "sub-01_ses-1.html"
    text = out.read_text()
    assert f'class="banner error" id="qc-out-of-range">{participant.OUT_OF_RANGE_BANNER}' in text
    assert "31.5 months" in text
    assert "age_above_range" in text and "low_dice" in text
    assert "Figure not found" in text and "desc-saliency" in text  # missing figure noted
    assert text.count('<svg class="reportlet"') == len(DESCS) - 1
    assert '<section id="errors">' not in text and '<section id="methods">' not in text


def test_report_without_session_ignores_session_figures(images, tmp_path):
    root = make_derivatives(tmp_path, images, session="1", citation=False)
    # the TSV of the session is not the subject-level one, figures carry ses-1: nothing matches
    text = participant.generate_report(root, "01").read_text()
    assert "Brain-age table not found" in text
    assert text.count("Figure not found") == len(DESCS)


def test_session_pages_link_each_other(tmp_path):
    """A subject with three sessions: each page lists all three in order of age, links the
    other two and marks itself; a single-session subject gets no sessions section."""
    for label, chrono, pred in (("12mo", "12.0", "11.5"), ("3mo", "3.0", "3.4"),
                                ("6mo", "6.0", "5.1")):
        anat = tmp_path / "sub-01" / f"ses-{label}" / "anat"
        anat.mkdir(parents=True)
        row = dict(ROW, session_id=f"ses-{label}", chronological_age_months=chrono,
                   predicted_age_months=pred)
        (anat / f"sub-01_ses-{label}_brainage.tsv").write_text(
            "\t".join(row) + "\n" + "\t".join(row.values()) + "\n")
    assert tables.sibling_sessions(tmp_path, "sub-01") == ["12mo", "3mo", "6mo"]
    text = participant.generate_report(tmp_path, "01", session="6mo").read_text()
    section = text[text.index('<section id="sessions">'):]
    section = section[:section.index("</section>")]
    assert re.findall(r">ses-(\w+)<", section) == ["3mo", "6mo", "12mo"]
    assert '<a href="sub-01_ses-3mo.html">' in section and '<a href="sub-01_ses-12mo.html">' in section
    assert "<strong>ses-6mo</strong> (this page)" in section and 'href="sub-01_ses-6mo.html"' not in section
    assert "5.1" in section and "11.5" in section
    assert '<a href="#sessions">' in text
    single = tmp_path / "single"
    anat = single / "sub-01" / "ses-3mo" / "anat"
    anat.mkdir(parents=True)
    (anat / "sub-01_ses-3mo_brainage.tsv").write_text(
        "\t".join(ROW) + "\n" + "\t".join(ROW.values()) + "\n")
    assert '<section id="sessions">' not in participant.generate_report(single, "01", "3mo").read_text()


def test_core_doctests():
    result = doctest.testmod(tables)
    assert result.attempted > 0 and result.failed == 0


# --------------------------------------------------------------------------------------------
# screenshot
# --------------------------------------------------------------------------------------------
def _load_script():
    spec = importlib.util.spec_from_file_location("screenshot_report", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_screenshot_script_without_chromium(tmp_path, monkeypatch, capsys):
    module = _load_script()
    monkeypatch.setattr(module, "CHROMIUM", str(tmp_path / "no-chromium"))
    monkeypatch.setenv("PATH", str(tmp_path))
    html = tmp_path / "r.html"
    html.write_text("<html></html>")
    assert module.main([str(html), str(tmp_path / "r.png")]) == 2
    assert "chromium not found" in capsys.readouterr().err


@pytest.mark.skipif(not CHROMIUM.exists(), reason="chromium not installed")
def test_screenshot(report_dirs, tmp_path):
    from PIL import Image

    png = tmp_path / "bad.png"
    proc = subprocess.run([sys.executable, str(SCRIPT), str(report_dirs["bad"]), str(png)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    head = png.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", head[16:24]) == (1280, 4000)
    assert png.stat().st_size > 20_000
    rgb = np.asarray(Image.open(png).convert("RGB")).astype(int)
    assert rgb.std() > 20  # not a blank page
    assert len(np.unique(rgb.reshape(-1, 3)[::7], axis=0)) > 50  # figures rendered
    red = (abs(rgb[..., 0] - 0xC0) < 12) & (abs(rgb[..., 1] - 0x39) < 12) & \
          (abs(rgb[..., 2] - 0x2B) < 12)
    assert red[:600].sum() > 5000  # red out-of-range banner near the top
    black = (rgb.sum(axis=-1) < 10)
    assert black.sum() > 50_000  # black reportlet backgrounds


def test_chromium_path_constant():
    # the script and the skip condition look at the same binary
    assert _load_script().CHROMIUM == str(CHROMIUM)


def test_plot_saliency_names_its_method(images, tmp_path):
    out = reportlets.plot_saliency(images["anat"], images["saliency"], tmp_path / "g.svg",
                                   method="gradient saliency")
    text = Path(out).read_text()
    assert "gradient saliency" in text and "Grad-CAM" not in text
