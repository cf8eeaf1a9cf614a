"""Progress of a participant run that a person can read, from Nipype's node status callbacks.

:class:`ParticipantProgress` is given to the plugin as ``plugin_args["status_callback"]``
(Nipype calls it in the scheduler process with ``(node, "start" | "end" | "exception")``, for
the Linear and MultiProc plugins alike). It shows, per session, the current stage and the
elapsed time, and overall "k of N sessions, ETA":

- on a terminal, one live line per session and a footer, redrawn in place (``rich.live``);
- otherwise (a log file, SLURM), plain one-line updates: one when a session enters a new
  stage and one when it ends, with the overall count and ETA.

``verbosity`` < 0 (``-q``) shows nothing; > 0 (``-v``) also prints every node as it starts
and ends (plain lines).
"""
from __future__ import annotations

import sys
import threading
import time

from ..utils.progress import duration

#: Stage shown for a node, by the start of the node's name (workflows/anatomical.py,
#: inference.py), in pipeline order. A session's stage only moves forward; the sinks and
#: report figures (``ds_*``, ``rpt_*``) run beside these as their inputs are ready and are
#: shown as :data:`LAST_STAGE` once the last of these has finished.
STAGES = (
    ("validate_", "validation"),
    ("brain_mask_", "brain mask"),
    ("n4_", "N4 bias correction"),
    ("rigid_t1w_to_t2w", "T1w-to-T2w registration"),
    ("t1w_t2w_ratio", "T1w/T2w ratio"),
    ("normalize_to_reference", "normalization to the reference"),
    ("brain_age", "brain age and Grad-CAM"),
    ("saliency_to_anat", "saliency map to the image"),
)
LAST_STAGE = "outputs and report figures"


def stage_of(node_name: str) -> tuple[int, str] | None:
    """(order, stage) of a node (:data:`STAGES`), or None for sinks, figures and bookkeeping."""
    for i, (prefix, stage) in enumerate(STAGES):
        if node_name.startswith(prefix):
            return i, stage
    return None


def _executed_nodes(workflow) -> list[str]:
    """Dotted names of the nodes Nipype will run: all but the IdentityInterface nodes, which it
    removes when it flattens the graph."""
    from nipype.interfaces.utility import IdentityInterface

    return [n for n in workflow.list_node_names()
            if not isinstance(workflow.get_node(n).interface, IdentityInterface)]


class ParticipantProgress:
    """Nipype ``status_callback`` that reports per-session stages, elapsed time and an ETA.

    Parameters
    ----------
    workflow : nipype Workflow
        The participant workflow (``init_bids_infantage_wf``); its node names give the number
        of nodes per session (``Workflow.list_node_names``).
    units : dict -> str mapping
        ``{workflow name component: label}``, e.g. ``{"single_session_m06_wf": "sub-m06"}``.
    stream : file, optional
        Where to write (default ``sys.stderr``).
    live : bool, optional
        Redraw in place (default: when ``stream`` is a terminal and ``verbosity`` is 0).
    verbosity : int
        < 0 silent, 0 stages, > 0 every node too.
    clock : callable
        Seconds (``time.monotonic``); replaceable in tests.

    The ETA is the elapsed time times the fraction of nodes not yet finished over the fraction
    finished (all sessions together), shown once a twentieth of the nodes have finished.
    """

    def __init__(self, workflow, units: dict, *, stream=None, live: bool | None = None,
                 verbosity: int = 0, clock=time.monotonic):
        self.stream = stream or sys.stderr
        self.verbosity = verbosity
        self.clock = clock
        self.t0 = clock()
        names = _executed_nodes(workflow) if workflow is not None else []
        self.sessions = {}
        for key, label in units.items():
            total = sum(1 for n in names if key in n.split("."))
            self.sessions[key] = {"label": label, "total": max(total, 1), "done": 0,
                                  "stage": "waiting", "order": -1, "start": None, "end": None,
                                  "failed": False}
        interactive = bool(getattr(self.stream, "isatty", lambda: False)())
        self.live_mode = (interactive and verbosity == 0) if live is None else live
        self._live = None
        self._lock = threading.Lock()

    # -- what is shown -------------------------------------------------------------------
    def counts(self) -> tuple[int, int]:
        """(sessions finished, sessions in all)."""
        done = sum(1 for s in self.sessions.values() if s["end"] is not None)
        return done, len(self.sessions)

    def eta_seconds(self) -> float | None:
        """Seconds left (None until 5% of the nodes have finished)."""
        total = sum(s["total"] for s in self.sessions.values())
        done = sum(min(s["done"], s["total"]) for s in self.sessions.values()
                   if s["end"] is None) + sum(s["total"] for s in self.sessions.values()
                                              if s["end"] is not None)
        if not total or done / total < 0.05:
            return None
        return (self.clock() - self.t0) * (total - done) / done

    def footer(self) -> str:
        """``k of N sessions done, <elapsed> elapsed, ETA <t>``."""
        k, n = self.counts()
        eta = self.eta_seconds()
        text = f"{k} of {n} session(s) done, {duration(self.clock() - self.t0)} elapsed"
        if k < n:
            text += f", ETA {duration(eta)}" if eta is not None else ", ETA estimating"
        return text

    def short_footer(self) -> str:
        """``1/5 sessions done, ETA 2:10``."""
        k, n = self.counts()
        eta = self.eta_seconds()
        return f"{k}/{n} sessions done, ETA " + (duration(eta) if eta is not None else "estimating")

    def session_line(self, key: str) -> str:
        """``sub-m06: N4 bias correction (5/27 steps, 12 s)``."""
        s = self.sessions[key]
        if s["start"] is None:
            return f"{s['label']}: waiting"
        elapsed = (s["end"] or self.clock()) - s["start"]
        if s["end"] is not None:
            state = "FAILED" if s["failed"] else "done"
            return f"{s['label']}: {state} in {duration(elapsed)}"
        return f"{s['label']}: {s['stage']} ({s['done']}/{s['total']} steps, {duration(elapsed)})"

    # -- Nipype's callback ---------------------------------------------------------------
    def _session_of(self, node) -> str | None:
        parts = str(getattr(node, "fullname", node)).split(".")
        for key in self.sessions:
            if key in parts:
                return key
        return None

    def __call__(self, node, status: str) -> None:
        if self.verbosity < 0:
            return
        key = self._session_of(node)
        if key is None:
            return
        with self._lock:
            s = self.sessions[key]
            now = self.clock()
            name = getattr(node, "name", str(node))
            lines = []
            if s["start"] is None:
                s["start"] = now
            if status == "start":
                found = stage_of(name)
                if found and found[0] > s["order"]:
                    s["order"], s["stage"] = found
                    lines.append(f"{self.session_line(key)} [{self.short_footer()}]")
                if self.verbosity > 0:
                    lines.append(f"{s['label']}: start {name}")
            else:
                s["done"] += 1
                if status == "exception":
                    s["failed"] = True
                if self.verbosity > 0:
                    lines.append(f"{s['label']}: {'FAILED' if status == 'exception' else 'end'} {name}")
                found = stage_of(name)
                if (status == "end" and found and found[0] == len(STAGES) - 1
                        and s["end"] is None and s["done"] < s["total"]):
                    s["order"], s["stage"] = len(STAGES), LAST_STAGE
                    lines.append(f"{self.session_line(key)} [{self.short_footer()}]")
                if s["end"] is None and (s["done"] >= s["total"] or status == "exception"):
                    s["end"] = now
                    lines.append(f"{self.session_line(key)}; {self.footer()}")
            if self.live_mode:
                self._refresh()
            else:
                for line in lines:
                    print(f"bids-infantage: {line}", file=self.stream, flush=True)

    # -- the live display (a terminal) ---------------------------------------------------
    def _render(self):
        from rich.text import Text

        text = Text()
        for key in self.sessions:
            text.append(self.session_line(key) + "\n")
        text.append(self.footer(), style="bold")
        return text

    def _refresh(self) -> None:
        if self._live is not None:
            self._live.update(self._render())

    def __enter__(self):
        if self.live_mode and self.verbosity >= 0:
            from rich.console import Console
            from rich.live import Live

            self._live = Live(self._render(), console=Console(file=self.stream),
                              refresh_per_second=2, transient=False,
                              get_renderable=self._render)
            self._live.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._live is not None:
            self._live.update(self._render())
            self._live.stop()
            self._live = None
