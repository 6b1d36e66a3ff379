"""Grids on a Ray cluster (`reproduce.study.cluster`), on a local instance of 2 CPUs: the
outputs equal those of the single-machine path (values, not only verdicts), a failing
unit is retried once and then named while the others are stored, and `--resume` skips
finished units."""

import json
import os
import pathlib
import sys

import pandas as pd
import pytest

ray = pytest.importorskip("ray")

from reproduce import appendix_c, sensitivity  # noqa: E402
from reproduce.study.cluster import Cluster, Unit, run_units  # noqa: E402
from reproduce.study.progress import Job  # noqa: E402
from reproduce.study.store import RecordStore, StudyError  # noqa: E402

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    """One local Ray instance for the module (set up before the network guard)."""
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import tests/
    yield
    ray.shutdown()


WALL_TIMES = ("elapsed_seconds", "seconds_per_step", "seconds")  # the only stored values that may differ


def _without_wall_times(data):
    """A stored record without its wall times (also in the records nested in it)."""
    if isinstance(data, dict):
        return {k: _without_wall_times(v) for k, v in data.items() if k not in WALL_TIMES}
    return data


def _stored(out):
    """{file name: record without its wall times} of every stored run under `out`."""
    return {
        str(path.relative_to(out)): _without_wall_times(json.loads(path.read_text()))
        for path in sorted(pathlib.Path(out, ".curves").rglob("*.json"))
    }


@pytest.mark.slow  # about 50 s: the sensitivity study twice; CI runs the slow tests after the default suite
def test_sensitivity_on_ray_equals_the_single_machine_run(data_dir, tmp_path):
    flags = "--figures 3 --preprocessings standardize --seeds 0 --figure3-steps 200 --budget-factors 1 --lrs 0.01,0.1"
    flags = flags.split() + ["--data-dir", data_dir]
    sensitivity.main([*flags, "--out", str(tmp_path / "here")])
    sensitivity.main([*flags, "--out", str(tmp_path / "ray"), "--cluster", "ray"])
    here, there = (pd.read_csv(tmp_path / name / "sensitivity.csv") for name in ("here", "ray"))
    columns = ["claim", "level", "seed", "budget", "verdict", "measured"]
    pd.testing.assert_frame_equal(here[columns], there[columns])
    stored_here, stored_there = _stored(tmp_path / "here"), _stored(tmp_path / "ray")
    assert len(stored_here) == 6 and stored_here == stored_there  # every loss of every rate, bit for bit


@pytest.mark.slow  # about 20 s; CI runs the slow tests after the default suite
def test_mnist_runs_on_ray_equal_the_single_machine_runs(tmp_path):
    flags = ["--quick", "--steps", "12", "--lrs", "0.01", "--stds", "0.1"]
    appendix_c.main([*flags, "--out", str(tmp_path / "here")])
    appendix_c.main([*flags, "--out", str(tmp_path / "ray"), "--cluster", "ray"])
    here, there = (pd.read_csv(tmp_path / name / "appendix_c.csv").drop(columns="seconds") for name in ("here", "ray"))
    pd.testing.assert_frame_equal(here, there)
    assert _stored(tmp_path / "here") == _stored(tmp_path / "ray")


class Counted:
    """A record of how many times a unit ran."""

    def __init__(self, tries):
        self.tries = tries

    def to_json(self):
        return {"tries": self.tries}


def flaky(folder, name, failures, crash=False):
    """Fails (raises, or kills its worker with `crash`) on its first `failures` tries."""
    counter = pathlib.Path(folder) / f"{name}.tries"
    tries = int(counter.read_text()) + 1 if counter.exists() else 1
    counter.write_text(str(tries))
    if tries <= failures:
        if crash:
            os._exit(1)
        raise RuntimeError(f"{name} failed on try {tries}")
    return Counted(tries)


def _unit(store, folder, name, failures, crash=False):
    return Unit(name, store, name, flaky, (str(folder), name, failures, crash), work=1.0)


def test_a_failing_unit_is_retried_once_then_named_and_the_others_are_stored(tmp_path):
    store = RecordStore(tmp_path / "store", decode=lambda data: data)
    units = [
        _unit(store, tmp_path, "fine", 0),
        _unit(store, tmp_path, "fails-once", 1),
        _unit(store, tmp_path, "worker-dies-once", 1, crash=True),
        _unit(store, tmp_path, "always-fails", 5),
    ]
    job = Job("test")
    with pytest.raises(
        StudyError, match=r"1 of 4 units failed.*always-fails \(RuntimeError: always-fails failed on try 2"
    ):
        run_units(units, Cluster(), job)
    assert store.get("fine") == {"tries": 1}
    assert store.get("fails-once") == {"tries": 2} and store.get("worker-dies-once") == {"tries": 2}
    assert store.get("always-fails") is None and (tmp_path / "always-fails.tries").read_text() == "2"
    assert {store.path(k) for k in ("fine", "fails-once", "worker-dies-once")} == job.written


def test_resume_sends_only_the_units_not_stored(data_dir, tmp_path):
    from reproduce.study.runs import FamilyRunner
    from tfovp.families import CurveFamily, CurveSpec
    from tfovp.problem import Problem

    problem = Problem.load("ethanol", "standardize", data_dir=data_dir)
    store = RecordStore(tmp_path, CurveFamily.from_json)
    specs = [CurveSpec("linear", depth=1, loss=2.0), CurveSpec("deep", depth=2, loss=2.0)]

    def runner(resume):
        return FamilyRunner(problem, store, steps=20, grid=(0.01,), seed=0, level=0.2, resume=resume, job=Job("t"))

    first = runner(False)
    run_units(first.units(specs[:1]), Cluster(), first.job)
    assert [u.key for u in runner(True).units(specs)] == [first.key(specs[1], [0])]
    assert len(runner(False).units(specs)) == 2  # without --resume everything is trained again


def test_threads_beyond_every_node_is_one_line(tmp_path):
    store = RecordStore(tmp_path, decode=lambda data: data)
    with pytest.raises(StudyError, match=r"--threads 64: no node of the Ray cluster has that many CPUs \(largest: 2\)"):
        run_units([_unit(store, tmp_path, "x", 0)], Cluster(threads=64), Job("t"))


def thread_counts():
    import tensorflow as tf

    from reproduce.study.cluster import blas_threads

    return {"tensorflow": tf.config.threading.get_intra_op_parallelism_threads(), "blas": blas_threads()}


def test_a_unit_runs_with_the_drivers_thread_counts(tmp_path):
    import threadpoolctl

    store = RecordStore(tmp_path, decode=lambda data: data, encode=lambda record: record)
    with threadpoolctl.threadpool_limits(limits=1, user_api="blas"):  # a driver whose BLAS has 1 thread
        run_units([Unit("threads", store, "threads", thread_counts, (), 1.0)], Cluster(threads=2), Job("t"))
    assert store.get("threads") == {"tensorflow": 2, "blas": 1}
