"""The forkserver of Nipype's MultiProc workers, started early with the modules every worker needs."""
from __future__ import annotations

import logging

LOGGER = logging.getLogger("bids_infantage")


def _interface_modules() -> tuple[str, ...]:
    import pkgutil

    from .. import interfaces

    return tuple(f"{interfaces.__name__}.{m.name}" for m in pkgutil.iter_modules(interfaces.__path__))


#: Modules imported once by the MultiProc forkserver, so that each worker forked from it has
#: them already: the workers' signal dispositions (:mod:`.worker_signals`); niworkflows' sink
#: module builds TemplateFlow's layout at import (4.8 s with the default ~/.cache/templateflow
#: skeleton of 2,540 files), which every worker otherwise repeats; then SimpleITK and every
#: module of ``bids_infantage.interfaces`` (torch is imported only inside the network node).
WORKER_PRELOAD = ("bids_infantage.cli.worker_signals", "niworkflows.interfaces.bids", "SimpleITK",
                  *_interface_modules())


def start_worker_forkserver() -> None:
    """Start the forkserver of Nipype's MultiProc workers now, importing :data:`WORKER_PRELOAD`
    (:func:`multiprocessing.set_forkserver_preload`; an import that fails is skipped there and
    done by the worker instead). Started before the dataset is indexed and the workflow built,
    its imports run on another core meanwhile."""
    import multiprocessing
    from multiprocessing import forkserver

    multiprocessing.set_forkserver_preload(["__main__", *WORKER_PRELOAD])
    try:
        forkserver.ensure_running()
    except (OSError, ValueError) as exc:  # MultiProc starts it later anyway
        LOGGER.debug("forkserver not started early: %s", exc)
