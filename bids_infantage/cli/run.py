"""Entry point of ``bids-infantage``: the participant and group levels."""
from __future__ import annotations

import gc
import logging
import os
import sys
import time
from pathlib import Path

from ..utils.io import atomic_write_text, remove_partials
from ..utils.locks import OutputLocks
from .dataset import find_precomputed_masks, run_bids_validator, write_derivatives_description
from .interrupts import STALE_PARTIAL_S, install_interrupt_handlers, lock_outputs, restore_signal_handlers
from .logs import SUMMARY, setup_logging
from .outcome import remove_stale_outputs, summarize
from .workers import start_worker_forkserver

LOGGER = logging.getLogger("bids_infantage")


def _unit_label(unit: dict) -> str:
    """``sub-<label>[_ses-<label>]``."""
    return f"sub-{unit['subject']}" + (f"_ses-{unit['session']}" if unit.get("session") else "")


def run_participant(config, locks: OutputLocks) -> int:
    """Participant level: lock the subjects' outputs (``locks``, :func:`lock_outputs`),
    preprocess, predict, sink outputs, assemble reports."""
    from nipype import config as ncfg

    from ..models.bundle.resolve import load_bundle
    from ..reports.participant import generate_report
    from ..reports.tables import bids_prefix, sibling_sessions
    from ..utils.bids import chronological_age, collect_sessions, index_dataset
    from ..workflows.base import init_bids_infantage_wf, unit_name
    from .progress import ParticipantProgress

    t0 = time.time()
    plugin = config.plugin_settings()
    if not config.reports_only and plugin["plugin_args"].get("mp_context") == "forkserver":
        start_worker_forkserver()  # imports on the other core while this one indexes the dataset
    if not config.skip_bids_validation:
        run_bids_validator(config.bids_dir)
    layout = index_dataset(config.bids_dir)
    units = collect_sessions(layout, config.participant_label, config.session_label)
    for unit in units:
        source = unit["t2w"] or unit["t1w"]
        unit["age"], unit["age_source"] = chronological_age(
            config.bids_dir, unit["subject"], unit.get("session"), source)
        unit["masks"] = find_precomputed_masks(config.derivatives, unit)
    LOGGER.info("%d subject/session(s): %s", len(units),
                ", ".join(_unit_label(u) for u in units))
    lock_outputs(locks, sorted({f"sub-{u['subject']}" for u in units}))
    from ..image.validation import check_header

    for unit in units:  # a degenerate header stops the run before anything is written (exit 2)
        for key in ("t1w", "t2w"):
            if unit[key]:
                check_header(unit[key])
    bundle = load_bundle(config.model)
    for unit in units:  # fail early (exit 2) when --modality cannot serve a session
        bundle.choose_configuration(
            unit["t1w"] is not None, unit["t2w"] is not None, config.modality)
    write_derivatives_description(config.output_dir, config.bids_dir, bundle)
    config.to_toml(config.work_dir / "config.toml")
    run_start = time.time()
    if not config.reports_only:
        ncfg.update_config({"execution": {
            "crashfile_format": "txt", "stop_on_first_crash": config.stop_on_first_crash,
            "remove_unnecessary_outputs": False, "hash_method": "content",
            "poll_sleep_duration": 0.05}})
        workflow = init_bids_infantage_wf(config, units)
        _write_citation(config.output_dir, workflow)
        if config.write_graph:
            try:
                workflow.write_graph(graph2use="colored", format="svg", simple_form=True)
            except (OSError, RuntimeError) as exc:
                LOGGER.warning("--write-graph: graph not written (%s); install graphviz", exc)
        LOGGER.info("running with %s (%s)", plugin["plugin"], plugin["plugin_args"])
        progress = ParticipantProgress(
            workflow, {f"single_session_{unit_name(u)}_wf": _unit_label(u) for u in units},
            verbosity=config.verbosity)
        if plugin["plugin"] in ("Linear", "MultiProc", "LegacyMultiProc"):
            plugin = {"plugin": plugin["plugin"],
                      "plugin_args": dict(plugin["plugin_args"], status_callback=progress)}
        # Nipype's MultiProc calls gc.collect() before every submission; with pybids' layout,
        # the workflow graph and the imported libraries alive, each call took 0.1 s of the
        # scheduler's time (19 s in a 5-subject run). Objects alive now are kept for the run
        # anyway: freeze them out of the collector's scans.
        gc.freeze()
        try:
            with progress:
                workflow.run(**plugin)
        except Exception:  # nipype raises when any node failed; the summary below says which
            LOGGER.info("some nodes failed; the summary below names them and their crash files")
        finally:
            gc.unfreeze()
        for unit in units:
            stale = remove_stale_outputs(config.output_dir, unit, run_start)
            if stale:
                LOGGER.info("sub-%s%s: removed %d file(s) of an earlier run that this run did not "
                            "write (e.g. %s)", unit["subject"],
                            f" ses-{unit['session']}" if unit.get("session") else "", len(stale),
                            stale[0].name)
    # Each session's page links the subject's other sessions: pages of sessions that an
    # earlier run wrote are rewritten too, so that they link the sessions of this run.
    pages = [(u["subject"], u.get("session")) for u in units]
    for subject in dict.fromkeys(u["subject"] for u in units if u.get("session")):
        for label in sibling_sessions(config.output_dir, subject):
            if (subject, label) not in pages and (
                    config.output_dir / f"{bids_prefix(subject, label)}.html").is_file():
                pages.append((subject, label))
    for subject, session in pages:
        try:
            generate_report(config.output_dir, subject, session, work_dir=config.work_dir)
        except Exception as exc:  # a report must not hide the results
            LOGGER.warning("report of sub-%s could not be assembled: %s", subject, exc)
    if config.reports_only:
        LOGGER.info("reports written to %s", config.output_dir)
        return 0
    return summarize(config, units, t0, run_start)


def _write_citation(output_dir: Path, workflow) -> None:
    """``logs/CITATION.md``: the workflows' ``__desc__`` sentences (methods boilerplate)."""
    descs = []

    def collect(wf):
        if getattr(wf, "__desc__", None):
            descs.append(wf.__desc__)
        for node in wf._graph.nodes():
            if hasattr(node, "_graph"):
                collect(node)

    collect(workflow)
    unique = list(dict.fromkeys(descs))
    (output_dir / "logs").mkdir(parents=True, exist_ok=True)
    atomic_write_text(output_dir / "logs" / "CITATION.md", "Results were generated with bids-infantage. "
                  + " ".join(unique) + "\n")


def run_group_level(config, locks: OutputLocks) -> int:
    """Group level: cohort table, metrics, bias correction, plots and report (the ``group``
    lock held, :func:`lock_outputs`)."""
    from ..group.analysis import run_group

    lock_outputs(locks, ["group"])

    result = run_group(config.output_dir, bias_correction_file=config.bias_correction,
                       include_flagged=config.include_flagged)
    LOGGER.log(SUMMARY, "group outputs written to %s (report: %s)", config.output_dir,
                config.output_dir / "group.html")
    return 0 if result is not None else 1


def main(argv=None) -> int:
    """``bids-infantage BIDS_DIR OUTPUT_DIR {participant,group} [options]``."""
    from .. import __version__
    from ..config import Config
    from ..utils.errors import InputError, ModelBundleError
    from .parser import parse_args, remove_if_empty

    opts = parse_args(argv)
    # threads per process for OpenMP and ITK (SimpleITK): MultiProc runs --nprocs processes, so
    # more threads each would oversubscribe the cores; the same count in every process also
    # makes results identical across plugins. Inherited by the worker processes.
    os.environ.setdefault("OMP_NUM_THREADS", str(opts.omp_nthreads))
    os.environ.setdefault("ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS", str(opts.omp_nthreads))
    import SimpleITK as sitk  # also for this process (Linear plugin), even if already imported

    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(
        int(os.environ["ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"]))
    config = Config(
        bids_dir=opts.bids_dir.resolve(), output_dir=opts.output_dir.resolve(),
        analysis_level=opts.analysis_level, work_dir=opts.work_dir,
        participant_label=opts.participant_label, session_label=opts.session_label,
        nprocs=opts.nprocs, omp_nthreads=opts.omp_nthreads, mem_gb=opts.mem_gb, device=opts.device,
        model=opts.model, modality=opts.modality, skull_strip=opts.skull_strip,
        derivatives=opts.derivatives, skip_bids_validation=opts.skip_bids_validation,
        stop_on_first_crash=opts.stop_on_first_crash, write_graph=opts.write_graph,
        reports_only=opts.reports_only, plugin_file=opts.plugin_file,
        bias_correction=opts.bias_correction, include_flagged=opts.include_flagged,
        verbosity=opts.verbose_count - opts.quiet_count, version=__version__,
    )
    setup_logging(config.work_dir, config.verbosity)
    locks = OutputLocks(config.output_dir)
    rc = 1
    previous = install_interrupt_handlers(locks, getattr(opts, "output_created", False))
    try:
        if config.output_dir.is_dir():  # top-level copies cut short (not a concurrent run's)
            stale = remove_partials(config.output_dir, recursive=False, min_age_s=STALE_PARTIAL_S)
            stale += remove_partials(config.output_dir / "logs", min_age_s=STALE_PARTIAL_S)
            if stale:
                LOGGER.info("removed %d partial file(s) left by an interrupted run", len(stale))
        if config.analysis_level == "group":
            rc = run_group_level(config, locks)
        else:
            rc = run_participant(config, locks)
        return rc
    except (InputError, ModelBundleError) as exc:
        LOGGER.error("error: %s", exc)
        rc = 2
        return rc
    except KeyboardInterrupt:
        LOGGER.error("interrupted; rerun with the same -w to resume from the cache")
        rc = 130
        return rc
    finally:
        restore_signal_handlers(previous)
        locks.release()
        if rc != 0 and getattr(opts, "output_created", False):
            remove_if_empty(config.output_dir)  # a failed first run leaves no empty folder


if __name__ == "__main__":
    sys.exit(main())
