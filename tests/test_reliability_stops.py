"""Reliability, round three: a converted model never destroys its target, output paths are
checked before any work, shared files are locked, and every stop (Ctrl-C, SIGTERM, a full
disk, a corrupt or foreign checkpoint, an unreachable cluster) ends with one true line."""

import errno
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from tfovp.files import atomic_save, locked, output_problem

pytestmark = pytest.mark.integration

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


def _blocked(tmp_path):
    """A path no one can write (its folder is a regular file; root ignores permissions)."""
    (tmp_path / "a-file").write_text("")
    return tmp_path / "a-file" / "out"


# ------------------------------------------------------------------ the atomic model save


def test_sigkill_during_a_model_save_leaves_the_old_target(tmp_path):
    target = tmp_path / "model.keras"
    target.write_bytes(b"the old model")
    code = (
        "import os, signal, sys; from tfovp.files import atomic_save\n"
        "def save(path):\n"
        "    assert path.endswith('.keras')\n"  # Keras insists on the suffix
        "    open(path, 'wb').write(b'half a model'); os.kill(os.getpid(), signal.SIGKILL)\n"
        f"atomic_save({str(target)!r}, save)\n"
    )
    killed = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=ENV)
    assert killed.returncode == -signal.SIGKILL
    assert target.read_bytes() == b"the old model"


def test_a_failing_save_leaves_the_target_and_no_temporary(tmp_path):
    target = tmp_path / "model.keras"
    target.write_bytes(b"the old model")

    def fails(path):
        with open(path, "wb") as handle:
            handle.write(b"half")
        raise OSError(errno.ENOSPC, "No space left on device", path)

    with pytest.raises(OSError):
        atomic_save(target, fails)
    assert target.read_bytes() == b"the old model" and os.listdir(tmp_path) == ["model.keras"]


def test_convert_refuses_its_source_as_target_and_too_deep_a_factorization(tmp_path, capsys):
    from tfovp import convert

    source = tmp_path / "m.keras"
    source.write_bytes(b"PK not really")
    link = tmp_path / "link.keras"
    link.symlink_to(source)
    for argv, message in (
        (["collapse", str(source), str(link)], "is the source model itself"),
        (["overparameterize", str(source), str(tmp_path / "t.keras"), "--depth", "100000"], "--depth 100000"),
        (["collapse", str(source), str(_blocked(tmp_path)) + ".keras"], "cannot write there"),
    ):
        with pytest.raises(SystemExit) as stopped:
            convert.main(argv)
        error = capsys.readouterr().err.strip()
        assert stopped.value.code == 2 and message in error and len(error.splitlines()) == 1
    assert source.read_bytes() == b"PK not really"


def test_ctrl_c_in_convert_is_one_line(tmp_path, capsys, monkeypatch):
    import keras

    from tfovp import convert, factoring

    source = tmp_path / "m.keras"
    keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)]).save(source)
    monkeypatch.setattr(factoring, "overparameterize", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt))
    assert convert.main(["overparameterize", str(source), str(tmp_path / "t.keras")]) == 130
    assert capsys.readouterr().err.strip() == "python -m tfovp.convert: interrupted; nothing was written"
    assert not (tmp_path / "t.keras").exists()


def test_a_stop_is_reported_when_a_cleanup_fails_during_it(tmp_path, capsys, monkeypatch):
    """SIGTERM raised inside code whose cleanup then fails (a progress bar closed half-way,
    TensorFlow's graph building): the error chained to the stop must not hide it."""
    from tfovp import compare
    from tfovp.console import Terminated

    def stopped_then_broken(*args, **kwargs):
        try:
            raise Terminated()
        finally:
            raise ZeroDivisionError("cleanup failed half-way")

    monkeypatch.setattr(compare, "compare_depths", stopped_then_broken)
    pd.DataFrame({"a": [1.0, 2.0, 3.0], "y": [1.0, 0.0, 2.0]}).to_csv(tmp_path / "d.csv", index=False)
    with pytest.raises(SystemExit) as stop:
        compare.main([str(tmp_path / "d.csv"), "--target", "y"])
    assert stop.value.code == 143
    assert (
        capsys.readouterr().err.strip().splitlines()[-1] == "python -m tfovp.compare: terminated; nothing was written"
    )


# ------------------------------------------------------------------ outputs checked first


def test_output_problems_are_found_before_any_work(tmp_path, capsys):
    from mnist_tutorial import convolutional as tutorial
    from reproduce import figure3
    from tfovp import compare

    blocked = _blocked(tmp_path)
    assert output_problem(tmp_path / "new" / "x.csv") is None and (tmp_path / "new").is_dir()
    assert output_problem(tmp_path, folder=False) == "is a folder, not a file"
    for flag in ("--out", "--checkpoint", "--tensorboard"):  # the tutorial: before loading MNIST
        assert tutorial.main(["--self_test", flag, str(blocked)]) == 2
        error = capsys.readouterr().err.strip()
        assert error.startswith(f"python -m mnist_tutorial.convolutional: error: {flag} ") and "\n" not in error
    with pytest.raises(SystemExit) as stopped:  # a figure: before loading data
        figure3.main(["--quick", "--tensorboard", str(blocked), "--out", str(tmp_path / "o")])
    assert stopped.value.code == 2 and "--tensorboard" in capsys.readouterr().err
    table = tmp_path / "d.csv"
    pd.DataFrame({"a": [1.0, 2.0, 3.0], "y": [1.0, 0.0, 2.0]}).to_csv(table, index=False)
    for flag in ("--plot", "--csv"):
        with pytest.raises(SystemExit) as stopped:
            compare.main([str(table), "--target", "y", flag, f"{blocked}.{flag[2:].replace('plot', 'png')}"])
        assert stopped.value.code == 2 and f"{flag} " in capsys.readouterr().err


# ------------------------------------------------------------------ compare


def test_compare_writes_the_table_and_a_figure_with_a_note_when_everything_diverges(tmp_path, capsys):
    from tfovp.compare import main

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(40, 3)), columns=["a", "b", "y"])
    frame.to_csv(tmp_path / "d.csv", index=False)
    flags = ["--target", "y", "--steps", "20", "--lrs", "50,100", "--depths", "1,2"]
    main([str(tmp_path / "d.csv"), *flags, "--plot", str(tmp_path / "p.png"), "--csv", str(tmp_path / "t.csv")])
    assert (tmp_path / "p.png").stat().st_size > 5_000 and len(pd.read_csv(tmp_path / "t.csv")) > 0
    assert "neither it nor the linear model gets below any level" in capsys.readouterr().out


@pytest.mark.parametrize(
    "column, message",
    [([3.0] * 5, "--target y: the column is constant (3)"), ([1.0, np.inf, 0.0, 2.0, 1.0], "infinite values in y")],
)
def test_compare_names_a_constant_or_infinite_column(tmp_path, capsys, column, message):
    from tfovp.compare import main

    pd.DataFrame({"a": np.arange(5.0), "y": column}).to_csv(tmp_path / "d.csv", index=False)
    with pytest.raises(SystemExit) as stopped:
        main([str(tmp_path / "d.csv"), "--target", "y"])
    error = capsys.readouterr().err.strip()
    assert stopped.value.code == 2 and message in error and len(error.splitlines()) == 1


def test_compare_memory_refusal_is_one_line(tmp_path, capsys, monkeypatch):
    from tfovp import compare

    pd.DataFrame({"a": np.arange(5.0), "y": np.arange(5.0) ** 2}).to_csv(tmp_path / "d.csv", index=False)
    monkeypatch.setattr(compare, "compare_depths", lambda *a, **k: (_ for _ in ()).throw(MemoryError("needs 9 GiB")))
    with pytest.raises(SystemExit) as stopped:
        compare.main([str(tmp_path / "d.csv"), "--target", "y"])
    assert stopped.value.code == 1 and capsys.readouterr().err.strip() == "python -m tfovp.compare: error: needs 9 GiB"


def test_sigterm_stops_compare_with_one_line_and_143(tmp_path):
    rng = np.random.default_rng(0)
    pd.DataFrame(rng.normal(size=(400, 3)), columns=["a", "b", "y"]).to_csv(tmp_path / "d.csv", index=False)
    child = subprocess.Popen(
        [sys.executable, "-m", "tfovp.compare", str(tmp_path / "d.csv"), "--target", "y", "--steps", "1000000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=ENV,
    )
    child.stdout.readline()  # the data were read: training has started
    time.sleep(1.0)
    child.send_signal(signal.SIGTERM)
    _, err = child.communicate(timeout=60)
    assert child.returncode == 143 and "Traceback" not in err, err
    assert err.strip().splitlines()[-1] == "python -m tfovp.compare: terminated; nothing was written"


@pytest.mark.parametrize("signum, status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_stop_landing_in_a_gc_callback_is_not_lost(signum, status):
    # The signal arrives while the child sleeps inside a garbage-collector callback (as
    # JAX's runs in every collection), where Python would only print the stop and go on.
    code = (
        "import gc, signal, sys, time\n"
        "from tfovp.console import stop_on_sigterm, stop_status, stop_word\n"
        "signal.signal(signal.SIGINT, signal.default_int_handler)\n"  # ignored where a background shell started us
        "stop_on_sigterm()\n"
        "first = [True]\n"
        "def slow(phase, info):\n"
        "    if phase == 'start' and first[0]:\n"
        "        first[0] = False; print('in callback', flush=True); time.sleep(2.0)\n"
        "gc.callbacks.append(slow)\n"
        "try:\n"
        "    for _ in range(300): gc.collect(); time.sleep(0.05)\n"
        "except KeyboardInterrupt as stop:\n"
        "    print(stop_word(stop), file=sys.stderr); sys.exit(stop_status(stop))\n"
        "sys.exit(0)\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=ENV
    )
    assert child.stdout.readline().strip() == "in callback"
    child.send_signal(signum)
    _, err = child.communicate(timeout=30)
    assert child.returncode == status and err.strip() == ("terminated" if status == 143 else "interrupted"), err


# ------------------------------------------------------------------ shared files locked


def test_figures_writing_claims_at_once_keep_each_others_rows(tmp_path):
    code = (  # wait for the start signal; a slow read widens the window between read and write
        "import os, sys, time; from reproduce.study.claims import Claim, ClaimsFile\n"
        "read = ClaimsFile.read\n"
        "ClaimsFile.read = lambda self: (read(self), time.sleep(0.2))[0]\n"
        "figure, folder = sys.argv[1], sys.argv[2]\n"
        "while not os.path.exists(os.path.join(folder, 'go')): time.sleep(0.005)\n"
        "ClaimsFile(folder).replace(figure, [Claim(figure, 'c', 'k', 'm', 'PASS')], 'cmd')\n"
    )
    writers = [
        subprocess.Popen([sys.executable, "-c", code, f"figure{n}", str(tmp_path)], cwd=ROOT, env=ENV) for n in range(3)
    ]
    time.sleep(1.0)  # every writer imported and waiting
    (tmp_path / "go").write_text("")
    assert [w.wait() for w in writers] == [0, 0, 0]
    rows = json.loads((tmp_path / "claims.json").read_text())
    assert sorted(r["figure"] for r in rows) == ["figure0", "figure1", "figure2"]


def test_a_lock_whose_holder_is_killed_is_free_at_once(tmp_path):
    import fcntl

    target = tmp_path / "claims.json"
    holder = subprocess.Popen(
        [sys.executable, "-c", f"from tfovp.files import locked\nwith locked({str(target)!r}):\n  input()"],
        stdin=subprocess.PIPE,
        cwd=ROOT,
        env=ENV,
    )
    lock_file = tmp_path / ".claims.json.lock"
    for _ in range(200):  # until the holder has it
        if lock_file.exists():
            with open(lock_file) as handle:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    fcntl.flock(handle, fcntl.LOCK_UN)
                except BlockingIOError:
                    break
        time.sleep(0.05)
    else:
        pytest.fail("the holder never took the lock")
    holder.kill()
    holder.wait()
    started = time.monotonic()
    with locked(target, notice=lambda text: pytest.fail(text)):
        pass
    assert time.monotonic() - started < 2.0


# ------------------------------------------------------------------ stops say one true line


def test_a_full_disk_during_a_figure_is_one_line_naming_the_file(tmp_path, capsys, monkeypatch):
    from reproduce import figure3

    def full(config, workdir, job=None):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "figure3.csv"))

    monkeypatch.setattr(figure3, "run", full)
    with pytest.raises(SystemExit) as stopped:
        figure3.main(["--quick", "--out", str(tmp_path)])
    error = capsys.readouterr().err.strip()
    assert stopped.value.code == 1 and len(error.splitlines()) == 1
    assert f"figure3.csv: No space left on device; 0 finished runs are stored in {tmp_path}/.curves" in error
    assert "--resume" in error


class _Trainer:
    """What a Checkpoint reads of a trainer: the model's and the optimizer's variables."""

    def __init__(self, value):
        import keras

        self.model = type("M", (), {"variables": [keras.Variable(np.full(3, value, "float32"))]})()
        self.optimizer = type("O", (), {"variables": [keras.Variable(np.float32(value))]})()


def test_a_corrupt_or_foreign_checkpoint_is_set_aside_with_one_line(tmp_path):
    from mnist_tutorial.train import Checkpoint

    path, said = tmp_path / "run.npz", []
    Checkpoint(str(path), _Trainer(1.0), "settings A", 500, said.append).save(500, {"step": [0]}, 1.0)
    fresh = _Trainer(0.0)
    assert Checkpoint(str(path), fresh, "settings A", 500, said.append).restore()[0] == 500
    assert float(fresh.optimizer.variables[0].numpy()) == 1.0  # restored
    assert Checkpoint(str(path), _Trainer(0.0), "settings B", 500, said.append).restore() is None
    assert not path.exists() and (tmp_path / "run.npz.other").is_file()
    assert said == [f"checkpoint {path} holds a run with other settings; kept as {path}.other; starting from step 0"]
    path.write_bytes(b"not a zip file")
    assert Checkpoint(str(path), _Trainer(0.0), "settings A", 500, said.append).restore() is None
    assert (tmp_path / "run.npz.corrupt").read_bytes() == b"not a zip file" and "cannot be read" in said[-1]


def test_the_tutorials_stop_says_what_its_checkpoint_holds(tmp_path, capsys, monkeypatch):
    from mnist_tutorial import convolutional as tutorial
    from mnist_tutorial import train
    from mnist_tutorial.config import Config

    path = tmp_path / "run.npz"
    config = Config(self_test=True, checkpoint=str(path))
    train.checkpoint_of(config, _Trainer(1.0)).save(300, {"step": [0]}, 1.0)
    monkeypatch.setattr(train, "train_and_evaluate", lambda config: (_ for _ in ()).throw(KeyboardInterrupt))
    assert tutorial.main(["--self_test", "--checkpoint", str(path)]) == 130
    error = capsys.readouterr().err.strip()
    assert error.endswith(
        f"interrupted; {path} holds the run at step 300; rerun the same command to continue from there"
    )
    assert tutorial.main(["--self_test"]) == 130
    assert capsys.readouterr().err.strip().endswith("interrupted; nothing is kept (--checkpoint FILE keeps a run "
                                                    "every --checkpoint-every steps)")  # fmt: skip


def test_an_unreachable_ray_address_is_given_up_at_once():
    from reproduce.study.cluster import _check_reachable
    from reproduce.study.store import StudyError

    started = time.monotonic()
    with pytest.raises(StudyError, match="--address 127.0.0.1:1: no Ray cluster answers there"):
        _check_reachable("127.0.0.1:1")
    assert time.monotonic() - started < 5


# ------------------------------------------------------------------ inputs checked in depth


def test_claim_rows_without_their_fields_stop_before_any_training(tmp_path):
    from reproduce.study.claims import ClaimsFile
    from reproduce.study.store import CorruptFileError

    (tmp_path / "claims.json").write_text(json.dumps([{"figure": "figure3", "verdict": "PASS"}]))
    with pytest.raises(CorruptFileError, match="row 1 lacks claim, criterion, measured, setting"):
        ClaimsFile(tmp_path).read()


def test_report_names_a_truncated_figure_json(tmp_path, capsys):
    from reproduce import report

    (tmp_path / "figure3.json").write_text('{"figure": "figure3", "con')
    with pytest.raises(SystemExit) as stopped:
        report.main(["--out", str(tmp_path), "--readme", str(tmp_path / "none.md")])
    error = capsys.readouterr().err.strip()
    assert stopped.value.code == 2 and f"{tmp_path / 'figure3.json'}: cannot be read" in error
    assert not (tmp_path / "README.md").exists()


def test_report_on_a_scratch_folder_leaves_the_project_readme_alone(tmp_path, monkeypatch):
    from reproduce import report

    project, scratch = tmp_path / "project", tmp_path / "project" / "runs"
    scratch.mkdir(parents=True)
    (project / "results").mkdir()
    markers = f"{report.CLAIMS_BEGIN}\nthe committed table\n{report.CLAIMS_END}\n"
    (project / "README.md").write_text(markers)
    rows = [{"figure": "figure3", "claim": "c", "criterion": "k", "measured": "m", "verdict": "PASS", "setting": "s"}]
    for folder in (scratch, project / "results"):
        (folder / "claims.json").write_text(json.dumps([{**rows[0], "command": "python -m reproduce.figure3"}]))
    monkeypatch.chdir(project)
    report.main(["--out", "runs"])
    assert (project / "README.md").read_text() == markers and (scratch / "README.md").is_file()
    report.main(["--out", "results"])  # the committed folder: the project README's table follows it
    assert "the committed table" not in (project / "README.md").read_text()


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_end_to_end_trains_half_precision_kernels(dtype):
    import keras

    from tfovp.optimizers import EndToEnd

    model = keras.Sequential([keras.Input((4,), dtype=dtype), keras.layers.Dense(3, dtype=dtype)])
    model.compile(EndToEnd(0.05, depth=2), loss="mse")
    x = np.random.default_rng(0).random((16, 4)).astype("float32")
    history = model.fit(x, x[:, :3], epochs=3, verbose=0).history["loss"]
    assert np.all(np.isfinite(history)) and history[-1] < history[0]
