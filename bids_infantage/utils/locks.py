"""Locks that keep two runs from writing the same outputs at once.

A participant run locks each subject it processes, a group run the group outputs: one OS
file lock (``filelock``; the OS releases it if the process dies) per name in
``OUTPUT_DIR/.bids-infantage-locks/``. Runs on different subjects share an output folder
(a SLURM array, one participant per task); a second run on a subject that a run is writing
is refused, so that two runs with different options cannot mix their outputs.
"""
from __future__ import annotations

from pathlib import Path

#: Folder of the lock files in an output folder (hidden: BIDS validators skip it)
LOCK_DIR = ".bids-infantage-locks"


class OutputLocks:
    """The locks one run holds in an output folder.

    Parameters
    ----------
    output_dir : Path
        The output folder.
    """

    def __init__(self, output_dir: Path) -> None:
        self.output_dir = Path(output_dir)
        self.held: dict[str, object] = {}

    def acquire(self, names) -> list[str]:
        """Take the lock of every name (e.g. ``sub-01``, ``group``) without waiting.

        Returns
        -------
        list of str
            The names another run holds; when there are any, no lock is kept (all or none).
        """
        from filelock import FileLock, Timeout

        folder = self.output_dir / LOCK_DIR
        folder.mkdir(parents=True, exist_ok=True)
        busy = []
        for name in names:
            if name in self.held:
                continue
            lock = FileLock(str(folder / f"{name}.lock"))
            try:
                lock.acquire(timeout=0)
            except Timeout:
                busy.append(name)
                continue
            self.held[name] = lock
        if busy:
            self.release()
        return busy

    def release(self) -> None:
        """Release every lock held and remove its file (and the lock folder once empty); a
        run starting in the instant between the two is the only race left."""
        for lock in self.held.values():
            path = Path(lock.lock_file)
            lock.release()
            path.unlink(missing_ok=True)
        self.held.clear()
        try:
            (self.output_dir / LOCK_DIR).rmdir()
        except OSError:  # other runs' locks are in it, or it is gone
            pass
