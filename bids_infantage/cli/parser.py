"""Command-line parser (BIDS-App conventions, as nibabies' ``cli/parser.py``)."""
from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from .. import __version__
from ..models.transforms import CONFIGURATIONS


def _strip_prefix(prefix: str):
    def convert(value: str) -> str:
        return value[len(prefix):] if value.startswith(prefix) else value
    return convert


def _positive(kind, what: str):
    """argparse type: a number > 0 of ``kind`` (int or float), else one line with the fix."""
    def convert(value: str):
        try:
            number = kind(value)
        except ValueError:
            number = None
        if number is None or not number > 0:
            raise argparse.ArgumentTypeError(f"{value!r} is not a positive {kind.__name__}; {what}")
        return number
    return convert


def version_string() -> str:
    """``bids-infantage v<version> (default model <name> <sha256[:12]>)``: the package and the
    identity of its packaged default model (the pinned sha256 of its ``bundle.json``)."""
    from ..models.bundle.resolve import DEFAULT_BUNDLE_SHA256, DEFAULT_MODEL

    return (f"bids-infantage v{__version__} (default model {DEFAULT_MODEL} "
            f"{DEFAULT_BUNDLE_SHA256[:12]})")


def get_parser() -> argparse.ArgumentParser:
    """The ``bids-infantage`` argument parser."""
    p = argparse.ArgumentParser(
        prog="bids-infantage",
        description="bids-infantage: infant brain age (0-24 months) from T1w, T2w and the T1w/T2w ratio.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("bids_dir", type=Path, help="the root folder of a BIDS dataset")
    p.add_argument("output_dir", type=Path, help="the output folder (BIDS-Derivatives)")
    p.add_argument("analysis_level", choices=["participant", "group"], help="processing stage")
    p.add_argument("--version", action="version", version=version_string())
    p.add_argument("-v", "--verbose", dest="verbose_count", action="count", default=0,
                   help="more output: -v prints every Nipype node as it starts and ends")
    p.add_argument("-q", "--quiet", dest="quiet_count", action="count", default=0,
                   help="less output: no progress lines, only warnings, errors and the summary")
    g = p.add_argument_group("selection")
    g.add_argument("--participant-label", "--participant_label", nargs="+", default=[],
                   type=_strip_prefix("sub-"), help="participant labels (with or without sub-)")
    g.add_argument("--session-label", nargs="+", default=[], type=_strip_prefix("ses-"),
                   help="session labels (with or without ses-)")
    g.add_argument("--derivatives", nargs="+", type=Path, default=[],
                   help="derivatives folders searched for precomputed brain masks "
                        "(sub-X[_ses-Y]_desc-brain_mask.nii.gz)")
    g = p.add_argument_group("model")
    g.add_argument("--model", default="infantage-default",
                   help="model bundle name (package data) or folder with bundle.json")
    g.add_argument("--modality", default="auto", choices=["auto", *CONFIGURATIONS],
                   help="input configuration; auto: the lowest validation MAE among those the "
                        "session's images allow (one image when the T1w and T2w fail the "
                        "same-brain check)")
    g.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    g.add_argument("--skull-strip", default="auto", choices=["auto", "skip", "force"],
                   help="auto: use skull-stripped inputs as they are and skull-strip heads "
                        "(MindGrab); skip: trust every image is skull-stripped; force: "
                        "skull-strip every image")
    g.add_argument("--bias-correction", type=Path, default=None,
                   help="group level: reuse brain-age-gap bias-correction parameters (JSON)")
    g.add_argument("--include-flagged", action="store_true",
                   help="group level: keep sessions flagged out of range (qc_out_of_range) in "
                        "the bias-correction fit and the metrics (default: left out)")
    g = p.add_argument_group("performance")
    g.add_argument("--nprocs", "--n-cpus", type=_positive(int, "give 1 or more processes"), default=os.cpu_count() or 1,
                   help="processes for Nipype (MultiProc)")
    g.add_argument("--omp-nthreads", type=_positive(int, "give 1 or more threads"), default=None,
                   help="threads per process for torch, OpenMP and ITK (default: 1)")
    g.add_argument("--mem-gb", "--mem", type=_positive(float, "give the memory in GB, e.g. 8"), default=None,
                   help="memory limit (GB)")
    g.add_argument("--plugin-file", type=Path, default=None,
                   help="Nipype plugin YAML (plugin: MultiProc|SLURM|SLURMGraph|SGE, plugin_args: {...})")
    g = p.add_argument_group("workflow")
    g.add_argument("-w", "--work-dir", type=Path, default=None,
                   help="work folder (cache); default: ./work")
    g.add_argument("--skip-bids-validation", "--skip_bids_validation", action="store_true")
    g.add_argument("--stop-on-first-crash", action="store_true")
    g.add_argument("--write-graph", action="store_true", help="write the workflow graph (SVG)")
    g.add_argument("--reports-only", action="store_true",
                   help="only assemble the HTML reports from existing outputs")
    return p


def _inside(child: Path, parent: Path) -> bool:
    try:
        child.resolve().relative_to(parent.resolve())
        return True
    except ValueError:
        return False


def _derivatives_owner(folder: Path) -> str | None:
    """Name of the pipeline whose ``dataset_description.json`` is in ``folder``
    (``GeneratedBy[0].Name``, or the description's ``Name``), ``"an unknown tool"`` when it
    cannot be read, None when there is none."""
    import json

    desc = folder / "dataset_description.json"
    if not desc.is_file():
        return None
    try:
        data = json.loads(desc.read_text())
        generated = data.get("GeneratedBy") or [{}]
        name = generated[0].get("Name") if isinstance(generated, list) and generated else None
        return str(name or data.get("Name") or "an unknown tool")
    except (OSError, ValueError, AttributeError):
        return "an unknown tool"


def remove_if_empty(folder: Path) -> None:
    """Remove ``folder`` if it is an empty directory (one this run created and left unused)."""
    try:
        folder.rmdir()
    except OSError:
        pass


def parse_args(argv=None):
    """Parse and check the command line; errors exit with one line (argparse's ``error``).

    Checks: BIDS dir exists; output dir is not the input and not inside it, and holds no
    other pipeline's derivatives (a ``dataset_description.json`` not generated by
    bids-infantage); work dir is not inside the input, nor the output dir or a folder of it
    (or above it); the output dir can be written; ``--nprocs``, ``--omp-nthreads`` and
    ``--mem-gb`` are positive.
    """
    parser = get_parser()
    opts = parser.parse_args(argv)
    bids = opts.bids_dir.resolve()
    if not bids.is_dir():
        parser.error(f"BIDS folder {opts.bids_dir} does not exist.")
    out = opts.output_dir.resolve()
    if out == bids or _inside(out, bids):
        parser.error(f"output folder {opts.output_dir} is the input or inside it; "
                     "choose a folder outside the BIDS dataset (we never write into the input).")
    opts.work_dir = (opts.work_dir or Path.cwd() / "work").resolve()
    if _inside(opts.work_dir, bids):
        parser.error(f"work folder {opts.work_dir} is inside the BIDS dataset; choose another (-w).")
    if _inside(opts.work_dir, out) or _inside(out, opts.work_dir):
        parser.error(f"work folder {opts.work_dir} and output folder {opts.output_dir} overlap "
                     "(the cache would mix with the derivatives); choose a separate -w, e.g. "
                     f"{out.parent / 'work'}.")
    owner = _derivatives_owner(out)
    if owner is not None and owner != "bids-infantage":
        parser.error(f"output folder {opts.output_dir} holds derivatives of {owner} "
                     "(its dataset_description.json); choose another folder, e.g. "
                     f"{Path(opts.output_dir) / 'bids-infantage'}, so they are not overwritten.")
    if opts.plugin_file:
        from ..config import read_plugin_file
        from ..utils.errors import InputError

        if not opts.plugin_file.is_file():
            parser.error(f"--plugin-file {opts.plugin_file} does not exist.")
        try:
            read_plugin_file(opts.plugin_file)
        except InputError as exc:
            parser.error(str(exc))
    opts.output_created = not out.exists()
    for folder, what in ((out, f"output folder {opts.output_dir}"), (opts.work_dir, f"work folder {opts.work_dir}")):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd, probe = tempfile.mkstemp(dir=folder, prefix=".bids-infantage-write-test.")
            os.close(fd)  # a unique name: concurrent runs (SLURM array) probe at once
            os.unlink(probe)
        except OSError as exc:
            if opts.output_created:
                remove_if_empty(out)
            parser.error(f"{what} cannot be written ({exc.strerror}); check permissions or "
                         f"choose another folder{' (-w)' if folder != out else ''}.")
    if opts.omp_nthreads is None:
        opts.omp_nthreads = 1
    return opts
