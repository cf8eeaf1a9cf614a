"""Interrupted runs: Ctrl-C and SIGTERM handlers that release the run's locks and remove its
partial files, and the locks taken on the output folders.
"""
from __future__ import annotations

import logging
import os
import sys

from ..utils.io import remove_partials
from ..utils.locks import OutputLocks

LOGGER = logging.getLogger("bids_infantage")


#: Signals that stop a run like Ctrl-C: SIGINT (Ctrl-C) and SIGTERM (SLURM's time limit, kill)
INTERRUPT_SIGNALS = ("SIGINT", "SIGTERM")


def install_interrupt_handlers(locks: OutputLocks, output_created: bool) -> dict:
    """Make SIGINT and SIGTERM end the run at once with one line and exit status 130.

    Nipype turns an exception raised inside an interface (``KeyboardInterrupt`` included) into
    a failed node with a crash file and goes on with the next node (Linear plugin), and each
    MultiProc worker printed its own traceback. The handler (:func:`interrupt_handler`)
    therefore does not raise: it stops the worker processes (psutil), removes the staging
    files of copies cut short in the subjects it holds the locks of
    (:func:`~bids_infantage.utils.io.remove_partials`: no output is left half-written) and the
    locks, prints "interrupted; rerun with the same -w to resume"
    and leaves with ``os._exit(130)``, before Nipype can write a crash file. Nipype's cache
    in the work folder keeps every finished node, so the rerun resumes.

    Returns the previous handlers (for :func:`restore_signal_handlers`); none are installed
    outside the main thread.
    """
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return {}
    handler = interrupt_handler(locks, output_created)
    previous = {}
    for name in INTERRUPT_SIGNALS:
        sig = getattr(signal, name)
        previous[sig] = signal.signal(sig, handler)
    return previous


def restore_signal_handlers(previous: dict) -> None:
    """Put back the handlers :func:`install_interrupt_handlers` replaced."""
    import signal

    for sig, handler in previous.items():
        signal.signal(sig, handler)


def interrupt_handler(locks: OutputLocks, output_created: bool):
    """The signal handler of :func:`install_interrupt_handlers` for one run."""
    def handle(signum, frame):  # noqa: ARG001 - signal handler signature
        import signal

        import psutil

        for sig in INTERRUPT_SIGNALS:  # a second Ctrl-C while cleaning up changes nothing
            signal.signal(getattr(signal, sig), signal.SIG_IGN)
        # the stopped workers break MultiProc's process pool, whose future callbacks log
        # "exception calling callback ... BrokenProcessPool" with a traceback: not for users
        logging.getLogger("concurrent.futures").disabled = True
        try:
            children = psutil.Process().children(recursive=True)
            for child in children:
                child.terminate()
            _, alive = psutil.wait_procs(children, timeout=5)
            for child in alive:
                child.kill()
        except psutil.Error:
            pass
        try:
            _remove_own_partials(locks)
            locks.release()
            if output_created:
                from .parser import remove_if_empty

                remove_if_empty(locks.output_dir)
        except OSError:
            pass
        LOGGER.error("interrupted (%s); rerun with the same -w to resume from the cache",
                     signal.Signals(signum).name)
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(130)
    return handle


#: Age (s) beyond which a top-level staging file is taken for a leftover of an interrupted
#: run, rather than a copy in progress by a concurrent run (SLURM array) sharing the folder
STALE_PARTIAL_S = 300.0


def lock_outputs(locks: OutputLocks, names) -> None:
    """Lock the outputs of ``names`` (``sub-<label>`` or ``group``) for this run and remove
    their staging files left by an interrupted run.

    Raises
    ------
    InputError
        Another run is writing one of them (one line naming them and the fix).
    """
    from ..utils.errors import InputError
    from ..utils.locks import LOCK_DIR

    busy = locks.acquire(names)
    if busy:
        raise InputError(
            f"{locks.output_dir}: another bids-infantage run is writing {', '.join(busy)} in this "
            f"output folder (locks in {locks.output_dir / LOCK_DIR}); wait for it to finish, or "
            "choose other participants or another output folder.")
    _remove_own_partials(locks)


def _remove_own_partials(locks: OutputLocks) -> int:
    """Remove the staging files of the outputs this run holds the locks of."""
    out, n = locks.output_dir, 0
    for name in locks.held:
        n += len(remove_partials(out, recursive=False, pattern=f"{name}*"))
        if (out / name).is_dir():
            n += len(remove_partials(out / name))
    if n:
        LOGGER.info("removed %d partial file(s) left by an interrupted run", n)
    return n

