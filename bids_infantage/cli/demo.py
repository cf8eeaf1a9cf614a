"""``bids-infantage-demo [OUT]``: the whole app on an embedded demo dataset, offline.

The package carries the five BMEXInfant population templates (0, 6, 9, 12 and 24 months,
T1w + T2w) at 1.6 mm (``bids_infantage/data/demo``, made by ``scripts/make_demo_data.py``,
MIT licence of the templates beside them). This command writes them as a BIDS dataset to
``OUT/bids``, then runs ``bids-infantage OUT/bids OUT/bids-infantage participant`` and
``group`` with the work folder ``OUT/work``. It needs neither ``../shared`` nor a network.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

from ..utils.errors import InputError

#: ``GeneratedBy`` name of the dataset this command writes: an existing ``OUT/bids`` carrying
#: it is ours to refresh; any other folder there is left alone
GENERATED_BY = "bids-infantage-demo"


def demo_data_dir() -> Path:
    """The package's demo images (``bids_infantage/data/demo``)."""
    from ..utils.data import data_path

    return data_path("demo")


def write_demo_dataset(bids_dir: Path, participants=None) -> list[str]:
    """Write the embedded demo images as a BIDS dataset in ``bids_dir``.

    One participant per template (``sub-m00`` ... ``sub-m24``), each with a skull-stripped
    T1w and T2w at 1.6 mm (uint16, 0..1000), ages in months in ``participants.tsv``.

    Parameters
    ----------
    bids_dir : Path
        Folder to write; created if missing. A folder holding anything but an earlier demo
        dataset is refused.
    participants : sequence of str, optional
        Labels to write (``m00``, ``m06``, ``m09``, ``m12``, ``m24``); default all five.

    Returns
    -------
    list of str
        The participant labels written.

    Raises
    ------
    InputError
        ``bids_dir`` exists and is not a demo dataset, a label is unknown, or a packaged image
        does not match the sha256 recorded in ``demo.json`` (a damaged installation).
    """
    src = demo_data_dir()
    record = json.loads((src / "demo.json").read_text())
    known = record["participants"]
    labels = list(participants or known)
    unknown = [p for p in labels if p not in known]
    if unknown:
        raise InputError(f"demo: unknown participant(s) {', '.join(unknown)}; choose from "
                         f"{', '.join(known)}")
    bids_dir = Path(bids_dir)
    description = bids_dir / "dataset_description.json"
    if bids_dir.exists() and any(bids_dir.iterdir()):
        try:
            ours = any(g.get("Name") == GENERATED_BY
                       for g in json.loads(description.read_text()).get("GeneratedBy", []))
        except (OSError, ValueError, AttributeError):
            ours = False
        if not ours:
            raise InputError(f"{bids_dir}: exists and is not a dataset written by {GENERATED_BY}; "
                             "choose another OUT folder")
    bids_dir.mkdir(parents=True, exist_ok=True)
    for label in labels:
        anat = bids_dir / f"sub-{label}" / "anat"
        anat.mkdir(parents=True, exist_ok=True)
        for name, sha in known[label]["files_sha256"].items():
            data = (src / name).read_bytes()
            if hashlib.sha256(data).hexdigest() != sha:
                raise InputError(f"{src / name}: does not match its sha256 in demo.json; "
                                 "reinstall bids-infantage")
            contrast = name.split("_")[-1]  # T1w.nii.gz / T2w.nii.gz
            target = anat / f"sub-{label}_{contrast}"
            if not target.exists() or target.read_bytes() != data:
                target.write_bytes(data)
    for old in bids_dir.glob("sub-*"):  # participants of an earlier demo not asked for now
        if old.name[4:] not in labels:
            shutil.rmtree(old)
    description.write_text(json.dumps({
        "Name": "bids-infantage embedded demo: BMEXInfant templates at 0, 6, 9, 12 and 24 months",
        "BIDSVersion": "1.10.0",
        "DatasetType": "raw",
        "License": "MIT",
        "Authors": ["Developing Brain Computing Lab, UNC Chapel Hill (image data)"],
        "HowToAcknowledge": f"Cite {record['reference']}",
        "GeneratedBy": [{"Name": GENERATED_BY, "Description": record["processing"]}],
    }, indent=2) + "\n")
    (bids_dir / "README").write_text(
        "bids-infantage embedded demo\n============================\n\n"
        "Five participants, each one age-specific population-average infant brain template\n"
        "(skull-stripped, downsampled to 1.6 mm) with a T1w and a T2w image: 0, 6, 9, 12 and\n"
        "24 months (participants.tsv, column \"age\", in months).\n\n"
        f"Source: {record['source']}.\n{record['reference']}.\n"
        "Licence: MIT (LICENSE).\n")
    shutil.copyfile(src / "LICENSE-BMEXInfant", bids_dir / "LICENSE")
    rows = ["participant_id\tage\tcohort"] + [
        f"sub-{p}\t{known[p]['age_months']}\t{known[p]['cohort']}" for p in labels]
    (bids_dir / "participants.tsv").write_text("\n".join(rows) + "\n")
    (bids_dir / "participants.json").write_text(json.dumps({
        "age": {"Description": "Age of the population the template represents, postnatal "
                               "(corrected) age", "Units": "months"},
        "cohort": {"Description": "Cohort index of the template in tpl-BMEXInfant"}}, indent=2) + "\n")
    for contrast in ("T1w", "T2w"):
        (bids_dir / f"{contrast}.json").write_text(json.dumps({
            "SkullStripped": True,
            "Description": "Population-average template, skull-stripped, 1.6 mm"}, indent=2) + "\n")
    return labels


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bids-infantage-demo",
        description="Run bids-infantage (participant, then group) on the embedded demo dataset: "
                    "five infant brain templates (0-24 months), offline.")
    parser.add_argument("out", nargs="?", type=Path, default=Path("infantage-demo"),
                        help="folder for the demo: OUT/bids (input), OUT/bids-infantage (outputs, "
                             "reports), OUT/work (cache); default ./infantage-demo")
    parser.add_argument("--participant-label", nargs="+", metavar="LABEL",
                        help="demo participants to run (m00 m06 m09 m12 m24; default all)")
    parser.add_argument("--nprocs", type=int, default=min(os.cpu_count() or 1, 4),
                        help="processes (default: the cores, at most 4)")
    parser.add_argument("--omp-nthreads", type=int, default=1)
    parser.add_argument("--model", default=None,
                        help="model bundle (default: infantage-default; e.g. wada2019)")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and the summary")
    return parser


def main(argv=None) -> int:
    """Write the demo dataset, run participant then group; returns the exit status."""
    from . import run

    args = get_parser().parse_args(argv)
    out = args.out.resolve()
    try:
        labels = write_demo_dataset(out / "bids", args.participant_label)
    except InputError as exc:
        print(f"bids-infantage-demo: error: {exc}", file=sys.stderr)
        return 2
    common = ["-w", str(out / "work")] + (["-q"] if args.quiet else [])
    derivatives = out / "bids-infantage"
    if args.model:  # another model's outputs go to their own folder (group refuses mixed models)
        derivatives = out / f"bids-infantage-{Path(args.model).name}"
    rc = run.main([str(out / "bids"), str(derivatives), "participant",
                   "--participant-label", *labels, "--nprocs", str(args.nprocs),
                   "--omp-nthreads", str(args.omp_nthreads), *common,
                   *(["--model", args.model] if args.model else [])])
    if rc != 0:
        print(f"bids-infantage-demo: the participant level failed (exit {rc}); see above",
              file=sys.stderr)
        return rc
    rc = run.main([str(out / "bids"), str(derivatives), "group", *common])
    if rc == 0:
        print(f"bids-infantage-demo: reports in {derivatives}: "
              + ", ".join(f"sub-{p}.html" for p in labels) + ", group.html")
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
