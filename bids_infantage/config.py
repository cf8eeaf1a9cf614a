"""Run settings: one object, built from the command line, saved as TOML in the work dir.

Only the top-level workflow (``workflows/base.py``) reads it; everything below takes
arguments.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class Config:
    """Settings of one ``bids-infantage`` run (see ``docs/usage.md`` for every flag)."""

    bids_dir: Path
    output_dir: Path
    analysis_level: str
    work_dir: Path
    participant_label: list[str] = field(default_factory=list)
    session_label: list[str] = field(default_factory=list)
    nprocs: int = 1
    omp_nthreads: int = 1
    mem_gb: float | None = None
    device: str = "auto"
    model: str = "infantage-default"
    modality: str = "auto"
    skull_strip: str = "auto"
    derivatives: list[Path] = field(default_factory=list)
    skip_bids_validation: bool = False
    stop_on_first_crash: bool = False
    write_graph: bool = False
    reports_only: bool = False
    plugin_file: Path | None = None
    bias_correction: Path | None = None
    include_flagged: bool = False
    verbosity: int = 0
    version: str = ""

    def to_toml(self, path: Path) -> Path:
        """Save the settings (paths as strings, None left out)."""
        import toml

        data = {k: (str(v) if isinstance(v, Path) else [str(x) for x in v] if isinstance(v, list) else v)
                for k, v in asdict(self).items() if v is not None}
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(toml.dumps({"bids_infantage": data}))
        return path

    def plugin_settings(self) -> dict:
        """Nipype plugin and its arguments (MultiProc by default, or from ``--plugin-file``)."""
        if self.plugin_file:
            settings = read_plugin_file(self.plugin_file)
            settings.setdefault("plugin_args", {})
            if settings["plugin"] == "MultiProc":  # command-line values unless the file sets them
                settings["plugin_args"].setdefault("n_procs", self.nprocs)
                settings["plugin_args"].setdefault("mp_context", "forkserver")
                if self.mem_gb:
                    settings["plugin_args"].setdefault("memory_gb", self.mem_gb)
            return settings
        if self.nprocs <= 1:
            return {"plugin": "Linear", "plugin_args": {}}
        # forkserver: workers never inherit thread pools (ITK, OpenMP) that do not survive fork
        args = {"n_procs": self.nprocs, "raise_insufficient": False, "mp_context": "forkserver"}
        if self.mem_gb:
            args["memory_gb"] = self.mem_gb
        return {"plugin": "MultiProc", "plugin_args": args}


def read_plugin_file(path) -> dict:
    """Read a ``--plugin-file`` (YAML: ``plugin``, a Nipype plugin name without ``Plugin``, and
    ``plugin_args``, a mapping; plain YAML only, ``yaml.safe_load``, no Python tags).

    Returns
    -------
    dict
        ``{"plugin": str, "plugin_args": dict}`` (MultiProc when ``plugin`` is absent).

    Raises
    ------
    InputError
        Unreadable or unsafe YAML, not a mapping, or a plugin Nipype does not have.
    """
    import yaml
    from nipype.pipeline import plugins

    from .utils.errors import InputError

    try:
        settings = yaml.safe_load(Path(path).read_text()) or {}
    except yaml.YAMLError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        raise InputError(f"--plugin-file {path}: not plain YAML ({first}); write only "
                         "'plugin: NAME' and a 'plugin_args:' mapping, without !!python tags.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"--plugin-file {path}: cannot be read ({exc}).") from None
    if not isinstance(settings, dict) or not isinstance(settings.get("plugin_args", {}) or {}, dict):
        raise InputError(f"--plugin-file {path}: must be a mapping with 'plugin: NAME' and a "
                         "'plugin_args:' mapping.")
    settings["plugin"] = str(settings.get("plugin") or "MultiProc")
    settings["plugin_args"] = dict(settings.get("plugin_args") or {})
    if not hasattr(plugins, settings["plugin"] + "Plugin"):
        known = sorted(n[:-len("Plugin")] for n in dir(plugins) if n.endswith("Plugin"))
        raise InputError(f"--plugin-file {path}: unknown Nipype plugin '{settings['plugin']}'; "
                         f"use one of {', '.join(known)}.")
    return settings

