"""Workflow graphs built on empty BIDS skeletons (nothing heavy runs), and the CLI parser."""
from __future__ import annotations

import pytest


def _unit(t1w=True, t2w=True):
    return {"subject": "01", "session": "1", "t1w": "/x/sub-01_ses-1_T1w.nii.gz" if t1w else None,
            "t2w": "/x/sub-01_ses-1_T2w.nii.gz" if t2w else None, "age": 3.0, "warnings": [],
            "masks": {}}


@pytest.mark.parametrize("t1w,t2w", [(True, True), (True, False), (False, True)])
def test_single_session_graph(tmp_path, t1w, t2w):
    from bids_infantage.models.bundle.resolve import resolve_bundle
    from bids_infantage.workflows.base import init_single_session_wf

    wf = init_single_session_wf(unit=_unit(t1w, t2w), output_dir=tmp_path, model=str(resolve_bundle(None)),
                                model_desc="test", modality="auto", skull_strip="auto", device="cpu",
                                omp_nthreads=1)
    names = set(wf.list_node_names())
    assert "anat_preproc_wf.n4_t2w" in names if t2w else "anat_preproc_wf.n4_t1w" in names
    assert ("anat_preproc_wf.rigid_t1w_to_t2w" in names) == (t1w and t2w)
    assert ("ds_outputs_wf.ds_ratio" in names) == (t1w and t2w)
    assert "inference_wf.brain_age" in names
    sinks = [n for n in names if n.split(".")[-1].startswith("ds_")]
    assert len(sinks) >= 6
    wf._create_flat_graph()  # all connections resolve
    # scheduling: image sinks re-gzip (about 1 s each) and go to the MultiProc workers; tiny
    # nodes (text sinks, warning lists, the table) run in the scheduler's process
    for name in names:
        node = wf.get_node(name)
        leaf = name.split(".")[-1]
        if leaf.startswith("ds_") and not leaf.startswith("ds_report_"):
            assert node.run_without_submitting is not bool(node.inputs.compress), name
        if leaf in ("merge_warnings", "flatten_warnings", "brain_age_table", "ds_report_brainmask"):
            assert node.run_without_submitting, name
    assert not wf.get_node("anat_preproc_wf.n4_t2w" if t2w else "anat_preproc_wf.n4_t1w").run_without_submitting


def test_top_level_graph_has_one_workflow_per_session(tmp_path):
    from bids_infantage.config import Config
    from bids_infantage.workflows.base import init_bids_infantage_wf

    cfg = Config(bids_dir=tmp_path, output_dir=tmp_path / "out", analysis_level="participant",
                 work_dir=tmp_path / "work")
    units = [_unit(), dict(_unit(), session="2"), dict(_unit(t2w=False), subject="02", session=None)]
    wf = init_bids_infantage_wf(cfg, units)
    subs = {n.split(".")[0] for n in wf.list_node_names()}
    assert subs == {"single_session_01_1_wf", "single_session_01_2_wf", "single_session_02_wf"}


def test_parser_strips_prefixes_and_checks_paths(tmp_path):
    from bids_infantage.cli.parser import parse_args

    bids = tmp_path / "bids"
    bids.mkdir()
    opts = parse_args([str(bids), str(tmp_path / "out"), "participant", "--participant-label",
                       "sub-01", "02", "--session-label", "ses-a", "-w", str(tmp_path / "w")])
    assert opts.participant_label == ["01", "02"]
    assert opts.session_label == ["a"]
    for bad in ([str(bids), str(bids), "participant"],
                [str(bids), str(bids / "derivatives"), "participant"],
                [str(bids), str(tmp_path / "o"), "participant", "-w", str(bids / "work")]):
        with pytest.raises(SystemExit) as exc:
            parse_args(bad)
        assert exc.value.code == 2
    assert not (bids / "derivatives").exists() and not (bids / "work").exists()


def test_plugin_settings(tmp_path):
    from bids_infantage.config import Config

    cfg = Config(bids_dir=tmp_path, output_dir=tmp_path, analysis_level="participant", work_dir=tmp_path,
                 nprocs=2, mem_gb=4)
    assert cfg.plugin_settings()["plugin"] == "MultiProc"
    assert cfg.plugin_settings()["plugin_args"]["n_procs"] == 2
    yml = tmp_path / "plugin.yml"
    yml.write_text("plugin: SLURM\nplugin_args:\n  sbatch_args: --time=1:00:00\n")
    cfg.plugin_file = yml
    assert cfg.plugin_settings() == {"plugin": "SLURM", "plugin_args": {"sbatch_args": "--time=1:00:00"}}
    assert Config(bids_dir=tmp_path, output_dir=tmp_path, analysis_level="participant", work_dir=tmp_path,
                  nprocs=2).plugin_settings()["plugin_args"]["mp_context"] == "forkserver"
    saved = cfg.to_toml(tmp_path / "config.toml").read_text()
    assert "plugin_file" in saved and "nprocs = 2" in saved


def test_worker_preload_modules_import():
    """The forkserver skips a preload module that fails to import, silently: every name in
    ``WORKER_PRELOAD`` must exist (a typo would quietly bring back the per-worker imports)."""
    import importlib

    from bids_infantage.cli.workers import WORKER_PRELOAD

    assert "niworkflows.interfaces.bids" in WORKER_PRELOAD
    for name in WORKER_PRELOAD:
        importlib.import_module(name)
