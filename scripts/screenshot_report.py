#!/usr/bin/env python
"""Render an HTML report to PNG with headless Chromium.

Usage::

    python scripts/screenshot_report.py REPORT.html OUT.png

Chromium (``/usr/bin/chromium``; ``apt-get install -y chromium``) renders the page in a
1280 x 4000 px window with a fresh profile and no network activity of its own. Exits with
status 2 when Chromium is missing and 1 when the screenshot could not be written.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

#: Chromium binary looked for first; ``chromium`` / ``chromium-browser`` on PATH otherwise.
CHROMIUM = "/usr/bin/chromium"
#: Window size (pixels) of the screenshot.
WINDOW_SIZE = (1280, 4000)


def find_chromium() -> str | None:
    """Path of the Chromium binary, or None."""
    if os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    return shutil.which("chromium") or shutil.which("chromium-browser")


def screenshot(html_file: str | Path, out_png: str | Path, *, timeout: float = 180.0,
               window_size: tuple[int, int] = WINDOW_SIZE) -> Path:
    """Render ``html_file`` to ``out_png``.

    Parameters
    ----------
    html_file : str or Path
        Self-contained HTML file.
    out_png : str or Path
        Output PNG (``window_size`` pixels).
    timeout : float
        Seconds before Chromium is stopped.
    window_size : tuple of int
        Width and height of the window (pixels).

    Returns
    -------
    Path
        Absolute path of the PNG.

    Raises
    ------
    FileNotFoundError
        Chromium or the HTML file is missing.
    RuntimeError
        Chromium failed or wrote no PNG.
    """
    chromium = find_chromium()
    if chromium is None:
        raise FileNotFoundError(
            f"chromium not found ({CHROMIUM}); install it with "
            "'apt-get update && apt-get install -y chromium'"
        )
    html_file = Path(html_file).absolute()
    if not html_file.is_file():
        raise FileNotFoundError(f"{html_file}: no such HTML file")
    out_png = Path(out_png).absolute()
    out_png.parent.mkdir(parents=True, exist_ok=True)
    if out_png.exists():
        out_png.unlink()
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        cmd = [
            chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", f"--user-data-dir={profile}", f"--screenshot={out_png}",
            f"--window-size={window_size[0]},{window_size[1]}", html_file.as_uri(),
        ]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"chromium did not finish within {timeout:.0f} s") from None
    if not out_png.is_file() or out_png.stat().st_size == 0:
        tail = "\n".join((proc.stderr or "").strip().splitlines()[-15:])
        raise RuntimeError(f"chromium (exit {proc.returncode}) wrote no screenshot:\n{tail}")
    return out_png


def main(argv=None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("html", help="HTML report")
    parser.add_argument("png", help="output PNG")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds (default 180)")
    args = parser.parse_args(argv)
    try:
        out = screenshot(args.html, args.png, timeout=args.timeout)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
