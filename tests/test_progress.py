"""Progress of a participant run from Nipype's status callbacks (issue #17)."""
from __future__ import annotations

import io

import nipype.interfaces.utility as niu
import nipype.pipeline.engine as pe
import pytest

from bids_infantage.cli.parser import get_parser, version_string
from bids_infantage.cli.progress import LAST_STAGE, ParticipantProgress
from bids_infantage.models.bundle.resolve import DEFAULT_BUNDLE_SHA256


def _step(x):
    return x + 1


def _fail(x):
    raise ValueError("a failing step")


def _workflow(tmp_path, fail_b=False):
    """Two sessions of four steps each (an IdentityInterface inputnode, which Nipype drops)."""
    wf = pe.Workflow(name="bids_infantage_wf", base_dir=str(tmp_path))
    wf.config["execution"]["crashdump_dir"] = str(tmp_path)  # not the current folder
    for label in ("a", "b"):
        sub = pe.Workflow(name=f"single_session_{label}_wf")
        inputnode = pe.Node(niu.IdentityInterface(fields=["x"]), name="inputnode")
        inputnode.inputs.x = 1
        prev, field = inputnode, "x"
        for name in ("n4_t2w", "brain_age", "saliency_to_anat", "ds_table"):
            fn = _fail if (fail_b and label == "b" and name == "brain_age") else _step
            node = pe.Node(niu.Function(function=fn, input_names=["x"], output_names=["out"]),
                           name=name)
            sub.connect(prev, field, node, "x")
            prev, field = node, "out"
        wf.add_nodes([sub])
    return wf


def _run(tmp_path, verbosity=0, fail_b=False):
    wf = _workflow(tmp_path, fail_b)
    stream = io.StringIO()
    progress = ParticipantProgress(wf, {"single_session_a_wf": "sub-a",
                                        "single_session_b_wf": "sub-b"},
                                   stream=stream, verbosity=verbosity)
    with progress:
        try:
            wf.run(plugin="Linear", plugin_args={"status_callback": progress})
        except RuntimeError:
            assert fail_b
    return progress, stream.getvalue().splitlines()


def test_plain_lines_name_each_stage_then_the_count(tmp_path):
    progress, lines = _run(tmp_path)
    assert progress.sessions["single_session_a_wf"]["total"] == 4  # the inputnode is not counted
    a = [line for line in lines if "sub-a" in line]
    assert [line.split(": ")[2].split(" (")[0] for line in a[:4]] == [
        "N4 bias correction", "brain age and Grad-CAM", "saliency map to the image", LAST_STAGE]
    assert "sub-a: done in" in a[-1] and "1 of 2 session(s) done" in a[-1]
    assert "2 of 2 session(s) done" in lines[-1] and "ETA" not in lines[-1].split("elapsed")[-1]
    assert all(line.startswith("bids-infantage: ") for line in lines)


def test_quiet_prints_nothing_and_verbose_prints_every_node(tmp_path):
    assert _run(tmp_path / "q", verbosity=-1)[1] == []
    lines = _run(tmp_path / "v", verbosity=1)[1]
    assert sum("start" in line for line in lines) == 8
    assert sum(": end " in line for line in lines) == 8


def test_a_failed_node_ends_its_session_as_failed(tmp_path):
    progress, lines = _run(tmp_path, fail_b=True)
    assert any("sub-b: FAILED in" in line for line in lines)
    assert progress.counts() == (2, 2)


def test_live_display_on_a_terminal(tmp_path):
    class Tty(io.StringIO):
        def isatty(self):
            return True

    wf = _workflow(tmp_path)
    stream = Tty()
    progress = ParticipantProgress(wf, {"single_session_a_wf": "sub-a",
                                        "single_session_b_wf": "sub-b"}, stream=stream)
    assert progress.live_mode
    with progress:
        wf.run(plugin="Linear", plugin_args={"status_callback": progress})
    out = stream.getvalue()
    assert "sub-a: done in" in out and "2 of 2 session(s) done" in out
    assert "bids-infantage: sub-a" not in out  # redrawn in place, not plain lines


def test_eta_from_the_fraction_of_nodes_finished():
    clock = iter([0.0] + [10.0] * 50)
    progress = ParticipantProgress(None, {"s1_wf": "sub-1", "s2_wf": "sub-2"},
                                   stream=io.StringIO(), clock=lambda: next(clock))
    for s in progress.sessions.values():
        s["total"] = 10
    assert progress.eta_seconds() is None  # nothing finished yet
    progress.sessions["s1_wf"]["done"] = 5  # 5 of 20 nodes in 10 s: 15 left, 30 s
    assert progress.eta_seconds() == pytest.approx(30.0)


def test_verbosity_flags_and_version():
    parser = get_parser()
    opts = parser.parse_args(["in", "out", "participant", "-q"])
    assert opts.verbose_count - opts.quiet_count == -1
    opts = parser.parse_args(["in", "out", "participant", "-vv"])
    assert opts.verbose_count == 2
    assert DEFAULT_BUNDLE_SHA256[:12] in version_string()
    assert "infantage-default" in version_string()


def _square(x):
    return x * x


@pytest.mark.parametrize("nprocs", [1, 2])
def test_map_with_progress_keeps_order_and_logs_each_job(nprocs, caplog):
    import logging

    from bids_infantage.utils.progress import map_with_progress

    logger = logging.getLogger("bids_infantage.test_progress")
    with caplog.at_level(logging.INFO, logger=logger.name):
        out = map_with_progress(_square, [3, 1, 2], nprocs, logger=logger, what="members",
                                describe=lambda j: f"job {j}")
    assert out == [9, 1, 4]
    lines = [r.getMessage() for r in caplog.records if r.name == logger.name]
    assert [line.split(" (")[0] for line in lines] == [
        "1 of 3 members done", "2 of 3 members done", "3 of 3 members done"]
    assert "ETA" in lines[0] and "ETA" not in lines[-1]
