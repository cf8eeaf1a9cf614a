"""Console and log-file messages of a run: our messages on the console (with a SUMMARY level
shown by -q too), Nipype's in the working directory's log file.
"""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

LOGGER = logging.getLogger("bids_infantage")


#: Level of the run's summary: shown with -q too (which hides INFO messages)
SUMMARY = 35
logging.addLevelName(SUMMARY, "SUMMARY")


def setup_logging(work_dir: Path, verbosity: int = 0) -> None:
    """Our messages on the console (INFO; -q: warnings, errors and the summary; -v: DEBUG);
    Nipype's in a log file (no tracebacks on the console)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("bids-infantage: %(message)s"))
    LOGGER.handlers[:] = [handler]
    LOGGER.setLevel(logging.WARNING if verbosity < 0 else logging.DEBUG if verbosity > 0
                    else logging.INFO)
    LOGGER.propagate = False
    work_dir.mkdir(parents=True, exist_ok=True)
    # MultiProc workers start fresh interpreters (forkserver) that read this config: keep their
    # node messages and tracebacks off the console (failures are summarized from crash files)
    cfg_dir = work_dir / "nipype-config"
    cfg_dir.mkdir(exist_ok=True)
    (cfg_dir / "nipype.cfg").write_text(
        "[logging]\nworkflow_level = CRITICAL\ninterface_level = CRITICAL\nutils_level = CRITICAL\n")
    os.environ["NIPYPE_CONFIG_DIR"] = str(cfg_dir)
    from nipype import config as ncfg
    from nipype import logging as nlogging

    ncfg.update_config({"logging": {"log_directory": str(work_dir), "log_to_file": True,
                                    "workflow_level": "INFO", "interface_level": "WARNING"}})
    nlogging.update_logging(ncfg)
    for name in ("nipype.workflow", "nipype.interface", "nipype.utils"):
        lg = logging.getLogger(name)
        for h in list(lg.handlers):
            if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler):
                lg.removeHandler(h)
        lg.propagate = False
