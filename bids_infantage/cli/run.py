"""Entry point of ``bids-infantage``."""
from __future__ import annotations

import gc
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from ..utils.io import atomic_write_text, remove_partials
from ..utils.locks import OutputLocks

LOGGER = logging.getLogger("bids_infantage")

BIDSIGNORE = """\
*.html
**/figures
logs
**/log
*_xfm.txt
*_brainage.tsv
*_brainage.json
*_brainage.nii.gz
*_T1wT2w.nii.gz
*_T1wT2w.json
*_saliency.nii.gz
*_saliency.json
group_*
"""


#: Level of the run's summary: shown with -q too (which hides INFO messages)
SUMMARY = 35
logging.addLevelName(SUMMARY, "SUMMARY")


def _setup_logging(work_dir: Path, verbosity: int = 0) -> None:
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


def _start_worker_forkserver() -> None:
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


def write_derivatives_description(output_dir: Path, bids_dir: Path, bundle) -> None:
    """``dataset_description.json`` (DatasetType derivative, GeneratedBy with version and
    model) and ``.bidsignore`` for the non-BIDS outputs (reports, figures, tables)."""
    from .. import __version__

    generated = {
        "Name": "bids-infantage",
        "Version": __version__,
        "Description": f"model {bundle.name}, bundle.json sha256 {bundle.sha256}",
        "CodeURL": "https://github.com/bids-infantage/bids-infantage",
    }
    if os.getenv("BIDS_INFANTAGE_CONTAINER"):
        generated["Container"] = {"Type": "docker", "Tag": os.environ["BIDS_INFANTAGE_CONTAINER"]}
    desc = {
        "Name": "bids-infantage: infant brain age estimates",
        "BIDSVersion": "1.10.0",
        "DatasetType": "derivative",
        "GeneratedBy": [generated],
        "SourceDatasets": [{"URL": bids_dir.resolve().as_uri()}],
        "HowToAcknowledge": "Cite bids-infantage and the methods in logs/CITATION.md.",
        "License": "CC0",
        "Authors": ["bids-infantage"],
    }
    output_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(output_dir / "dataset_description.json", json.dumps(desc, indent=2) + "\n")
    atomic_write_text(output_dir / ".bidsignore", BIDSIGNORE)
    atomic_write_text(output_dir / "README", "Infant brain-age estimates made by bids-infantage "
                  f"{__version__}. See sub-*.html (per session) and group.html (cohort); column "
                  "descriptions are in the JSON sidecars.\n")


def run_bids_validator(bids_dir: Path) -> None:
    """Validate the input with ``bids-validator-deno``; print one summary block.

    Errors stop the run, except unreadable NIfTI headers of links stored as text files
    (git without symlinks), which bids-infantage follows.

    Raises
    ------
    InputError
        The dataset has validation errors.
    """
    from ..utils.bids import resolve_link_file
    from ..utils.errors import InputError

    exe = shutil.which("bids-validator-deno") or str(Path(sys.executable).parent / "bids-validator-deno")
    if not Path(exe).exists():
        LOGGER.warning("bids-validator-deno is not installed; input validation skipped "
                       "(pip install bids-validator-deno, or pass --skip-bids-validation)")
        return
    try:
        proc = subprocess.run([exe, "--json", str(bids_dir)], capture_output=True, text=True, timeout=600)
        report = json.loads(proc.stdout)
    except (subprocess.SubprocessError, ValueError, OSError) as exc:
        LOGGER.warning("BIDS validation could not run (%s); continuing", exc)
        return
    issues = report.get("issues", {}).get("issues", [])
    errors, warnings, followed = {}, {}, 0
    for issue in issues:
        loc = issue.get("location") or ""
        if issue.get("code") == "NIFTI_HEADER_UNREADABLE" and loc:
            path = bids_dir / loc.lstrip("/")
            if resolve_link_file(path) != path:
                followed += 1
                continue
        bucket = errors if issue.get("severity") == "error" else warnings
        bucket.setdefault(issue.get("code"), []).append(loc)
    lines = ["BIDS validation (bids-validator-deno):"]
    lines.append(f"  {sum(map(len, errors.values()))} errors, {sum(map(len, warnings.values()))} warnings"
                 + (f"; {followed} links stored as text files will be followed" if followed else ""))
    for code, locs in sorted(errors.items()):
        lines.append(f"  ERROR {code}: {len(locs)} file(s), e.g. {locs[0] or '(dataset)'}")
    for code, locs in sorted(warnings.items()):
        lines.append(f"  warning {code}: {len(locs)}")
    LOGGER.info("\n".join(lines))
    if errors:
        raise InputError(f"{bids_dir}: the dataset has BIDS validation errors (above); fix them or "
                         "pass --skip-bids-validation.")


def find_precomputed_masks(derivatives: list[Path], unit: dict) -> dict:
    """Brain masks ``sub-X[_ses-Y][_space-T1w|T2w]_desc-brain_mask.nii.gz`` in derivatives
    folders; a mask is matched to the T2w when the session has one, else to the T1w."""
    prefix = f"sub-{unit['subject']}" + (f"_ses-{unit['session']}" if unit.get("session") else "")
    for folder in derivatives:
        hits = sorted(Path(folder).rglob(f"{prefix}_*desc-brain_mask.nii*"))
        if not unit.get("session"):
            hits = [h for h in hits if "_ses-" not in h.name]
        if hits:
            key = "t2w" if unit["t2w"] else "t1w"
            for h in hits:
                if f"space-{key.upper()[:2]}w" in h.name or "space-" not in h.name:
                    return {key: str(h)}
    return {}


def _crash_message(crash_file: Path) -> str:
    text = crash_file.read_text(errors="replace")
    for pattern in (r"InputError: (.*)", r"ModelBundleError: (.*)"):
        found = re.findall(pattern, text)
        if found:
            return found[-1].strip()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    errs = [ln for ln in lines if re.match(r"^[\w.]+(Error|Exception)\b", ln)]
    return errs[-1] if errs else (lines[-1] if lines else "unknown error")


def _crash_unit(crash_file: Path) -> str | None:
    """Subject/session of a crash file, from the workflow path recorded in it."""
    found = re.search(r"single_session_([A-Za-z0-9_]+?)_wf", crash_file.read_text(errors="replace"))
    return found.group(1) if found else None


def remove_stale_outputs(output_dir: Path, unit: dict, run_start: float) -> list[Path]:
    """Remove a session's outputs that this run did not write (#19 item 4).

    A session's run owns its outputs: every sink runs in every run (``overwrite``), so a file
    of the session older than the run (its anatomical derivatives, figures and crash files)
    comes from an earlier run with other inputs (e.g. a T1w since removed) and would
    otherwise be mixed into the new result and its report.

    Parameters
    ----------
    output_dir : Path
    unit : dict
        The session (``subject``, ``session``).
    run_start : float
        Time (s since the epoch) the workflow started.

    Returns
    -------
    list of Path
        The files removed.
    """
    from ..workflows.base import unit_name

    sub = f"sub-{unit['subject']}"
    ses = f"ses-{unit['session']}" if unit.get("session") else None
    prefix = "_".join(filter(None, [sub, ses])) + "_"
    folders = [output_dir / sub / (ses or "") / "anat", output_dir / sub / "figures"]
    removed = []

    def older(path: Path) -> bool:
        return path.stat().st_mtime < run_start - 1

    for folder in folders:
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            name = path.name
            if (path.is_file() and name.startswith(prefix) and (ses or "_ses-" not in name)
                    and older(path)):
                path.unlink()
                removed.append(path)
    log = output_dir / sub / "log"
    if log.is_dir():
        for crash in log.glob("crash-*"):
            if crash.is_file() and older(crash) and _crash_unit(crash) == unit_name(unit):
                crash.unlink()
                removed.append(crash)
    return removed


def summarize(config, units, t0: float, run_start: float) -> int:
    """Print one line per unit (age or failure with crash file); returns the exit code."""
    from ..reports.tables import read_brainage_tsv
    from ..workflows.base import unit_name

    failed = 0
    lines = [f"Summary ({time.time() - t0:.0f} s):"]
    for unit in units:
        sub = f"sub-{unit['subject']}"
        ses = f"ses-{unit['session']}" if unit.get("session") else None
        folder = config.output_dir / sub / (ses or "") / "anat"
        table = folder / ("_".join(filter(None, [sub, ses])) + "_brainage.tsv")
        crash_dir = config.output_dir / sub / "log"
        crashes = [c for c in sorted(crash_dir.glob("crash-*"), key=lambda p: p.stat().st_mtime)
                   if c.stat().st_mtime >= run_start - 1 and _crash_unit(c) == unit_name(unit)
                   ] if crash_dir.exists() else []
        if crashes:
            failed += 1
            lines.append(f"  {unit_name(unit)}: FAILED: {_crash_message(crashes[-1])} (crash file: {crashes[-1]})")
        elif table.exists():
            rec = {k: v or "n/a" for k, v in read_brainage_tsv(table).items()}
            flag = " OUT OF RANGE" if rec.get("qc_out_of_range") == "true" else ""
            flag += " (from cache)" if table.stat().st_mtime < run_start - 1 else ""
            lines.append(f"  {unit_name(unit)}: {rec['predicted_age_months']} months "
                         f"[{rec['predicted_age_lower_months']}, {rec['predicted_age_upper_months']}] "
                         f"({rec['model_configuration']}){flag}")
        else:
            failed += 1
            lines.append(f"  {unit_name(unit)}: FAILED (not run; an earlier failure stopped the workflow)")
    LOGGER.log(SUMMARY, "\n".join(lines))
    return 1 if failed else 0


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
    from ..utils.progress import ParticipantProgress
    from ..workflows.base import init_bids_infantage_wf, unit_name

    t0 = time.time()
    plugin = config.plugin_settings()
    if not config.reports_only and plugin["plugin_args"].get("mp_context") == "forkserver":
        _start_worker_forkserver()  # imports on the other core while this one indexes the dataset
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
    _setup_logging(config.work_dir, config.verbosity)
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


if __name__ == "__main__":
    sys.exit(main())
