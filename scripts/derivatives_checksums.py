#!/usr/bin/env python3
"""sha256 of every table and sidecar of a bids-infantage derivatives folder, to show that a
change (a refactor, issue #18) leaves the outputs byte-identical.

Usage::

    .venv/bin/bids-infantage-demo /tmp/demo-after --nprocs 2
    .venv/bin/python scripts/derivatives_checksums.py /tmp/demo-after/bids-infantage > after.sha256
    .venv/bin/python scripts/derivatives_checksums.py /tmp/demo-after/bids-infantage --against before.sha256

Lists ``*.tsv`` and ``*.json`` (paths relative to the folder, sorted), except ``logs/`` and
the two files that record where and when a run happened (``dataset_description.json``:
``GeneratedBy`` with the command line; ``group_bias-correction.json``: the fitting cohort's
folder). With ``--against``, prints the files that differ and exits 1 if any does.
"""
from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

#: Files that name the run's folders or time, so differ between two identical runs.
RUN_RECORDS = {"dataset_description.json", "group_bias-correction.json"}


def checksums(folder: Path) -> dict[str, str]:
    """``{relative path: sha256}`` of the tables and sidecars under ``folder``."""
    out = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if path.suffix not in (".tsv", ".json") or rel.parts[0] == "logs" or path.name in RUN_RECORDS:
            continue
        out[rel.as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("folder", type=Path, help="bids-infantage derivatives folder")
    p.add_argument("--against", type=Path, help="a listing written by this script before")
    args = p.parse_args(argv)
    if not args.folder.is_dir():
        print(f"derivatives_checksums: {args.folder} is not a folder; give the derivatives "
              "folder (OUT/bids-infantage of bids-infantage-demo OUT)", file=sys.stderr)
        return 2
    now = checksums(args.folder)
    if args.against is None:
        for rel, digest in now.items():
            print(f"{digest}  {rel}")
        return 0
    before = dict(reversed(line.split(maxsplit=1)) for line in args.against.read_text().splitlines() if line)
    before = {k.strip(): v for k, v in before.items()}
    differ = sorted(k for k in before.keys() | now.keys() if before.get(k) != now.get(k))
    for rel in differ:
        print(f"differs: {rel} ({before.get(rel, 'absent')[:12]} -> {now.get(rel, 'absent')[:12]})")
    print(f"{len(now)} files, {len(differ)} differ")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
