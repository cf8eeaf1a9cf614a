"""Progress of jobs run on several processes, one log line as each ends (training members,
cross-validation folds). The progress of a participant run (Nipype's node callbacks) is
:mod:`bids_infantage.cli.progress`.
"""
from __future__ import annotations

import time


def duration(seconds: float) -> str:
    """``"m:ss"`` from a minute up, else ``"N s"`` (seconds rounded)."""
    seconds = int(round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}" if seconds >= 60 else f"{seconds} s"


def _call_indexed(args):
    fn, index, job = args
    return index, fn(job)


def map_with_progress(fn, jobs, nprocs: int, *, logger, what: str = "jobs", describe=str,
                      clock=time.monotonic) -> list:
    """``[fn(job) for job in jobs]`` on ``nprocs`` forked processes, logging one line as each
    job ends: ``k of N <what> done (<describe(job)>), <elapsed> elapsed, ETA <t>``.

    Used for the member trainings of ``bids-infantage-train`` and the fold trainings of
    ``bids-infantage-cv``. The ETA assumes the jobs left take as long as those done (per
    process). Results are in the order of ``jobs``; ``fn`` must be a module-level function.
    """
    jobs = list(jobs)
    t0 = clock()
    results = [None] * len(jobs)

    def report(k, job):
        elapsed = clock() - t0
        left = elapsed * (len(jobs) - k) / k
        logger.info("%d of %d %s done (%s), %s elapsed%s", k, len(jobs), what, describe(job),
                    duration(elapsed), f", ETA {duration(left)}" if k < len(jobs) else "")

    if nprocs > 1 and len(jobs) > 1:
        import multiprocessing as mp

        with mp.get_context("fork").Pool(nprocs) as pool:  # 1 torch thread per worker
            tasks = [(fn, i, job) for i, job in enumerate(jobs)]
            for k, (i, result) in enumerate(pool.imap_unordered(_call_indexed, tasks), 1):
                results[i] = result
                report(k, jobs[i])
    else:
        for k, job in enumerate(jobs, 1):
            results[k - 1] = fn(job)
            report(k, job)
    return results
