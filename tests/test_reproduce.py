"""The reproduction scripts: quick end-to-end runs, the claims they write, resume,
TensorBoard, the sensitivity study, Figure 5's MNIST panel and Appendix C."""

import dataclasses
import json
import shutil

import numpy as np
import pandas as pd
import pytest

from reproduce import common, figure2, figure3, figure4, figure5, migrate_csv, rejudge, sensitivity
from reproduce.study import criteria, outputs, runs
from reproduce.study.claims import Claim, ClaimsFile
from reproduce.study.provenance import digest, settings_key
from reproduce.study.stored import StoredFigure, load_config

pytestmark = pytest.mark.integration

CSV_COLUMNS = {
    "figure",
    "curve",
    "depth",
    "hidden_widths",
    "update",
    "initializer",
    "loss_p",
    "learning_rate",
    "seed",
    "selected",
    "step",
    "loss",
    "excess_loss",
    "relative_excess",
    "dataset",
    "preprocessing",
    "loss_reduction",
    "budget",
    "dtype",
}
JSON_KEYS = {"figure", "command", "config", "versions", "machine", "elapsed_seconds", "optimum", "curves", "claims"}
TINY = ["--quick", "--steps", "60"]


def _run(module, out, data_dir, *extra):
    return module.main([*TINY, "--out", str(out), "--data-dir", data_dir, *extra])


def _speed(curve):
    """A criteria.Speed from a curve of a figure's JSON."""
    return criteria.Speed(curve["iterations_to_level"], curve["final_relative_excess"])


def _comparisons(summary, p):
    """The criteria.Comparison records of a figure's JSON for the l_p panel."""
    return [criteria.Comparison.from_json(c) for name, c in summary["speedup"].items() if name.endswith(f"(l{p:g})")]


def _check_outputs(out, figure, n_claims):
    for suffix in ("csv", "json", "png", "pdf"):
        assert (out / f"{figure}.{suffix}").is_file()
    # The points table holds only the per-step values; the rest is once per run.
    assert pd.read_csv(out / f"{figure}.csv").columns.tolist() == list(outputs.POINT_COLUMNS)
    assert pd.read_csv(out / f"{figure}_runs.csv").columns.tolist()[: len(outputs.RUN_COLUMNS)] == list(
        outputs.RUN_COLUMNS
    )
    frame = outputs.read_curves(out / f"{figure}.csv")
    assert set(frame.columns) >= CSV_COLUMNS and len(frame) > 0
    assert frame["loss"].notna().all()  # diverged steps are never written as NaN
    summary = json.loads((out / f"{figure}.json").read_text())
    assert set(summary) >= JSON_KEYS and summary["command"].startswith(f"python -m reproduce.{figure}")
    rows = [r for r in json.loads((out / "claims.json").read_text()) if r["figure"] == figure]
    assert len(rows) == n_claims
    assert [r["verdict"] for r in rows] == [c["verdict"] for c in summary["claims"]]
    assert f"- {figure}: `python -m reproduce.{figure}" in (out / "claims.md").read_text()
    return frame, summary


def test_figure3_quick_run_and_its_verdicts(data_dir, tmp_path):
    _run(figure3, tmp_path, data_dir)
    frame, summary = _check_outputs(tmp_path, "figure3", 4)
    assert summary["config"]["steps"] == 60 and set(frame["budget"]) == {60}
    assert summary["config"]["lrs"] == [1e-3, 1e-2, 1e-1]  # --quick's grid
    # The written verdicts are the criteria applied to the written measurements.
    speeds = {(n, p): _speed(summary["curves"][f"{figure3.label(n)} (l{p:g})"]) for n in (1, 2, 3) for p in (2, 4)}
    setting = summary["claims"][0]["setting"]
    expected = criteria.figure3(speeds, setting) + [
        criteria.speedup_claim("figure3", claim, _comparisons(summary, p), setting=setting, **kwargs)
        for p, claim, kwargs in (
            (2, "l2: deeper is not faster (slightly slower) (speed-up)", {"not_faster": True}),
            (4, "l4: deeper is much faster (speed-up)", {"factor": 2.0}),
        )
    ]
    assert [(c.claim, c.measured, c.verdict) for c in expected] == [
        (c["claim"], c["measured"], c["verdict"]) for c in summary["claims"]
    ]
    speedups = pd.read_csv(tmp_path / "figure3_speedup.csv")
    assert set(speedups["comparison"]) == set(summary["speedup"]) and (tmp_path / "figure3_speedup.png").is_file()
    # The selected rate in the CSV is the JSON's best rate of each curve.
    for (label, p), rows in frame[frame["selected"]].groupby(["curve", "loss_p"]):
        assert rows["learning_rate"].unique().tolist() == [summary["curves"][f"{label} (l{p:g})"]["best_learning_rate"]]
    _check_migration(tmp_path, "figure3", frame)
    _check_rejudged(tmp_path, "figure3")


def _check_rejudged(out, figure):
    """Judged again from its files alone (`reproduce.rejudge`), the run's claims come out
    word for word as the run wrote them, and nothing would change."""
    rows, replaced, data, measures = rejudge.rejudge(out, figure)
    assert [dataclasses.asdict(row) for row in rows] == replaced
    # Each family's summary rebuilt from the tables is the one the run wrote (the final
    # excess from the CSV's 8 digits).
    stored = StoredFigure(out / figure, load_config(rejudge.module_of(figure).Config, data))
    for key, curve in data["curves"].items():
        label, p = key.rsplit(" (l", 1)
        summary = stored.summary(label, float(p.rstrip(")")))
        assert summary.best_learning_rate == curve["best_learning_rate"]
        assert summary.diverged_rates == pytest.approx(curve["diverged_rates"], rel=1e-6)
        assert summary.final_relative_excess == pytest.approx(curve["final_relative_excess"], rel=1e-6)
        # The tables give each grid rate's final excess as the JSON does (runs before
        # 2026-12-06 have only the tables).
        from_tables = stored._grid_finals(label, float(p.rstrip(")")))
        assert [r for r, _ in from_tables] == pytest.approx([r for r, _ in curve["rates"]], rel=1e-6)
        for (_, final), (_, expected) in zip(from_tables, curve["rates"]):
            assert expected is None or final == pytest.approx(expected, rel=1e-6)
    assert measures.grid_verdicts == json.loads((out / f"{figure}.json").read_text())["speedup_claims_on_grid"]
    assert rejudge.run(out, [figure], check=True) == []
    # The speed-up table written again from the JSON is the run's, byte for byte.
    written = (out / f"{figure}_speedup.csv").read_bytes()
    rejudge.write_speedup_table(out, figure, data, measures.comparisons)
    assert (out / f"{figure}_speedup.csv").read_bytes() == written


OLD_LAYOUT = (
    "figure", "curve", "depth", "hidden_widths", "update", "initializer", "loss_p", "learning_rate", "seed",
    "tuning", "selected", "step", "loss", "excess_loss", "relative_excess", "dataset", "preprocessing",
    "loss_reduction", "budget", "dtype",
)  # fmt: skip


def _check_migration(out, figure, frame):
    """The figure's curves written in the one-table layout of the committed results before
    2026-12-05 and migrated back give its two tables byte for byte."""
    old = out / "old" / f"{figure}.csv"
    old.parent.mkdir()
    shutil.copy(out / f"{figure}.json", old.with_suffix(".json"))
    outputs.write_csv(old, frame[list(OLD_LAYOUT)])
    migrate_csv.main([str(old)])
    for name in (f"{figure}.csv", f"{figure}_runs.csv"):
        assert (old.parent / name).read_bytes() == (out / name).read_bytes(), name
    with pytest.raises(SystemExit):  # already migrated: a clear error, nothing rewritten
        migrate_csv.main([str(old)])


@pytest.mark.parametrize(
    "module, figure, extra, n_claims",
    [
        (figure2, "figure2", ["--widths", "1,10", "--losses", "4"], 4),
        pytest.param(figure4, "figure4", [], 4, marks=pytest.mark.slow),  # about 20 s
        pytest.param(figure5, "figure5", [], 5, marks=pytest.mark.slow),  # about 30 s
    ],
)
def test_quick_run_writes_every_output(module, figure, extra, n_claims, data_dir, tmp_path):
    _run(module, tmp_path, data_dir, *extra)
    frame, summary = _check_outputs(tmp_path, figure, n_claims)
    assert summary["config"]["steps"] == 60 and set(frame["budget"]) == {60}
    if module is figure2:
        distance = pd.read_csv(tmp_path / "figure2_distance.csv")
        assert set(distance["width"]) == {1, 10} and (tmp_path / "figure2_distance.png").is_file()
        assert set(summary["max_relative_distance"]) == {f"l4 N={n} width {w}" for n in (2, 3) for w in (1, 10)}
    else:
        _check_rejudged(tmp_path, figure)


@pytest.mark.slow  # about 45 s; CI runs the slow tests after the default suite
def test_seeds_judge_each_claim_over_the_seeds_and_resume_trains_nothing(data_dir, tmp_path):
    from reproduce import seeds
    from reproduce.study.criteria.seeds import over_seeds

    argv = ["--quick", "--figures", "figure3", "--steps", "60", "--out", str(tmp_path), "--data-dir", data_dir]
    seeds.main(argv)
    per_seed = {k: json.loads((tmp_path / "seeds" / f"figure3-seed{k}.json").read_text()) for k in (0, 1)}
    assert per_seed[1]["config"]["seed"] == 1 and per_seed[1]["config"]["steps"] == 60
    rows = [r for r in json.loads((tmp_path / "claims.json").read_text()) if r["figure"] == "figure3-seeds"]
    assert [r["claim"] for r in rows] == [r["claim"] for r in per_seed[0]["claims"]]
    for row in rows:
        verdicts = [next(c["verdict"] for c in per_seed[k]["claims"] if c["claim"] == row["claim"]) for k in (0, 1)]
        assert row["verdict"] == {True: "PASS", False: "FAIL", None: "INCONCLUSIVE"}[over_seeds(verdicts)]
    table = pd.read_csv(tmp_path / "seeds_speedup.csv")
    assert set(table["seed"]) == {0, 1} and set(table["kind"].dropna()) <= {
        "exact",
        "lower bound",
        "upper bound",
        "no data",
        "indefinite",
    }
    written = {name: (tmp_path / name).read_bytes() for name in ("seeds.csv", "seeds_speedup.csv")}
    seeds.main([*argv, "--resume"])  # every seed's JSON is there with the same settings: nothing trained
    assert json.loads((tmp_path / "seeds.json").read_text())["training_seconds"] == 0
    assert {name: (tmp_path / name).read_bytes() for name in written} == written
    with pytest.raises(SystemExit):  # one seed is no spread
        seeds.main(["--figures", "figure3", "--seeds", "0", "--out", str(tmp_path)])


@pytest.mark.slow  # about 15-40 s; CI runs the slow tests after the default suite
def test_figure5_right_panel_and_appendix_c_on_self_test_data(data_dir, tmp_path, monkeypatch, capsys):
    from mnist_tutorial import train as tutorial_train
    from reproduce import appendix_c, report

    _run(
        figure5,
        tmp_path,
        data_dir,
        "--panels",
        "left,right",
        "--self-test",
        "--mnist-seeds",
        "66478,1",
        "--mnist-variants",
        "--no-tune",
    )
    rows = [r for r in json.loads((tmp_path / "claims.json").read_text()) if r["claim"].startswith("MNIST")]
    # 5 claims of the two models, 2 per L2 variant, the preconditioned original's tracking
    assert len(rows) == 10 and "original: 0.00 (min 0.00, max 0.00)%" in rows[3]["measured"]
    history = pd.read_csv(tmp_path / "figure5_mnist_overparameterized.csv")
    assert list(history["step"]) == [0, 1, 2, 3]  # 256 fake images, one epoch of batch 64
    assert {"cross_entropy", "l2_term", "fc1_frobenius", "fc1_factor1_spectral"} <= set(history.columns)
    for name in (
        "overparameterized_seed1",
        "overparameterized-L2-on-factors",
        "overparameterized-L2-on-no-kernel",
        "original-preconditioned-Eq-10-N-2",
    ):
        assert (tmp_path / f"figure5_mnist_{name}.csv").is_file(), name
    assert (tmp_path / "figure5_mnist.png").is_file() and (tmp_path / "figure5_mnist_norms.png").is_file()
    summary = json.loads((tmp_path / "figure5.json").read_text())
    assert summary["mnist"]["overparameterized"]["parameters"] == 1_925_614
    assert summary["mnist"]["original"]["test_errors"] == [0.0, 0.0]
    assert "| overparameterized | 1,925,614 | 2 | 4 | 0.00 % (0.00–0.00) |" in report.build(tmp_path)
    # Rerunning the left panel alone keeps the right panel's claim rows.
    _run(figure5, tmp_path, data_dir, "--panels", "left")
    kept = json.loads((tmp_path / "claims.json").read_text())
    assert [r["claim"] for r in kept if r["claim"].startswith("MNIST")] == [r["claim"] for r in rows]
    assert sum(r["figure"] == "figure5" for r in kept) == 15

    flags = ["--quick", "--out", str(tmp_path)]
    capsys.readouterr()
    appendix_c.main(flags)
    console = "".join(capsys.readouterr())
    assert "lr 0.5, std 0.1: diverged at step" in console and "nan%" not in console  # a diverged run's line
    table = pd.read_csv(tmp_path / "appendix_c.csv")
    assert len(table) == 7 and (tmp_path / "appendix_c.png").is_file()
    # --quick refines to a ratio 8: one round, the geometric mean of 0.01 and 0.5 for each model
    refined = table[table["rates"] == "refinement 1"]
    assert list(refined["group"]) == ["original", "overparameterized"]
    np.testing.assert_allclose(refined["base_lr"], [np.sqrt(0.005)] * 2)
    diverged = table[table["base_lr"] == 0.5]  # both models: one overflows, one explodes past 1000x its start
    assert len(diverged) == 2 and diverged["diverged_at"].notna().all() and np.isinf(diverged["last_tenth_loss"]).all()
    result = json.loads((tmp_path / "appendix_c.json").read_text())
    assert result["best"]["overparameterized"]["base_lr"] == 0.01
    assert result["claims"][0]["verdict"] in ("PASS", "FAIL")  # both models have a finished run: decidable
    monkeypatch.setattr(
        tutorial_train, "train_and_evaluate", lambda *a, **k: pytest.fail("--resume retrained a finished run")
    )
    appendix_c.main([*flags, "--resume"])
    pd.testing.assert_frame_equal(
        pd.read_csv(tmp_path / "appendix_c.csv").drop(columns="seconds"), table.drop(columns="seconds")
    )
    # On a machine without the full records, the committed compact ones rebuild every run.
    committed = json.loads((tmp_path / f"appendix_c{appendix_c.RUNS_SUFFIX}").read_text())
    # 6 runs for 7 rows (the init-std grid's std 0.1 is the rate grid's overparameterized lr 0.01 run)
    assert len(committed) == 6 and all(r["series"]["step"][0] == 0 for r in committed.values())
    shutil.rmtree(tmp_path / ".curves" / "mnist")
    appendix_c.main([*flags, "--resume"])
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "appendix_c.csv"), table)
    assert json.loads((tmp_path / "appendix_c.json").read_text())["claims"] == result["claims"]
    text = report.build(tmp_path)
    assert "### appendix_c" in text and "| overparameterized | 0.5 | grid | 0.1 | inf |" in text
    stds = [r for r in result["claims"] if "init std" in r["claim"]]
    assert [r["claim"].rsplit("(", 1)[1] for r in stds] == ["printed loss)"] * 3 + ["cross-entropy)"] * 3
    # Judged again from the table alone, the claims are the run's (reproduce.rejudge).
    from reproduce import rejudge

    assert rejudge.run(tmp_path, ["appendix_c"], check=True) == []
    # The init-std grid alone, another seed, its own files and claim rows; its baseline is added.
    monkeypatch.undo()
    appendix_c.main([*flags, "--grids", "std", "--seed", "1", "--tag", "seed1"])
    other = pd.read_csv(tmp_path / "appendix_c-seed1.csv")
    assert list(other["group"]) == [appendix_c.BASELINE_GROUP, appendix_c.STD_GROUP]
    assert not np.allclose(other["last_tenth_loss"], table["last_tenth_loss"].iloc[[0, 4]])  # the seed is used
    rows = json.loads((tmp_path / "claims.json").read_text())
    assert (
        sum(r["figure"] == "appendix_c-seed1" for r in rows) == 6
        and sum(r["figure"] == "appendix_c" for r in rows) == 7
    )
    # No rate grid at seed 1: "far faster than the original at its best rate" cannot be judged.
    seed1 = [r for r in rows if r["figure"] == "appendix_c-seed1" and r["claim"].endswith("baseline (printed loss)")]
    assert seed1[0]["verdict"] == "INCONCLUSIVE" and "was not run at this budget and seed" in seed1[0]["measured"]
    text = report.build(tmp_path)
    assert "`python -m reproduce.appendix_c --steps 4 --grids std --seed 1 --tag seed1`" in text
    assert "in `appendix_c` (4 steps, seed 66478; here 4 steps, seed 1)" in text.split("### appendix_c-seed1", 1)[1]


def test_an_appendix_c_page_sets_each_verdict_beside_the_reference_run():
    from reproduce import report

    def summary(figure, budget, claims):
        return {
            "figure": figure,
            "config": budget,
            "claims": [{"claim": c, "verdict": v, "measured": m} for c, v, m in claims],
        }

    reference = summary("appendix_c", {"steps": 1000}, [("a", "FAIL", "9.94"), ("b", "PASS", "0.47")])
    run = summary(
        "appendix_c-10ep", {"epochs": 10, "seed": 1}, [("b", "PASS", "0.04"), ("a", "PASS", "1.1"), ("c", "FAIL", "2")]
    )
    lines = report._beside(run, reference)
    assert "in `appendix_c` (1,000 steps, seed 66478; here 10 epochs, seed 1)" in lines[1]
    assert lines[-2:] == ["| b | PASS: 0.47 | PASS: 0.04 | no |", "| a | FAIL: 9.94 | PASS: 1.1 | **yes** |"]
    assert report._beside(summary("x", {"steps": 4}, [("c", "PASS", "1")]), reference) == []  # nothing shared


def test_appendix_c_refinement_brackets_the_best_rate():
    """Hand-made tail losses: the geometric means toward each neighbour more than rho away,
    one side at a grid end, nothing when every run diverged; refining a unimodal tail
    loss from the paper's grid ends within rho of its minimiser."""
    from reproduce import appendix_c

    tails = {1e-3: 2.0, 5e-3: 1.0, 1e-2: 1.5, 5e-2: np.inf}
    np.testing.assert_allclose(appendix_c.refinement(tails, 1.5), [np.sqrt(5e-6), np.sqrt(5e-5)])
    assert appendix_c.refinement(tails, 2.0) == pytest.approx([np.sqrt(5e-6)])  # 1e-2 is within 2
    assert appendix_c.refinement({1e-3: 1.0, 5e-3: 2.0}, 1.5) == pytest.approx([np.sqrt(5e-6)])
    assert appendix_c.refinement({1e-3: np.inf, 5e-3: np.inf}, 1.5) == []
    assert appendix_c.refinement(tails, 0) == []
    for optimum in (3e-4, 0.02, 0.13):
        tails = {rate: np.log(rate / optimum) ** 2 for rate in appendix_c.PAPER_GRID}
        for _ in range(10):
            new = appendix_c.refinement(tails, 1.5)
            tails.update({rate: np.log(rate / optimum) ** 2 for rate in new})
        best = min(tails, key=tails.get)
        assert not new and max(best / optimum, optimum / best) <= 1.5, optimum


def test_mnist_panel_resume_keeps_the_finished_model(data_dir, tmp_path, monkeypatch):
    from mnist_tutorial import train as tutorial_train

    real, trained = tutorial_train.train_and_evaluate, []

    def interrupted(config, progress=None):
        if config.overparameterize:
            raise KeyboardInterrupt
        trained.append(config.overparameterize)
        return real(config, progress)

    monkeypatch.setattr(tutorial_train, "train_and_evaluate", interrupted)
    with pytest.raises(SystemExit) as stopped:
        _run(figure5, tmp_path, data_dir, "--panels", "right", "--self-test", "--mnist-seeds", "66478")
    assert stopped.value.code == 130 and trained == [False]

    def counted(config, progress=None):
        trained.append(config.overparameterize)
        return real(config, progress)

    monkeypatch.setattr(tutorial_train, "train_and_evaluate", counted)
    _run(figure5, tmp_path, data_dir, "--panels", "right", "--self-test", "--mnist-seeds", "66478", "--resume")
    assert trained == [False, True]  # the original model was not trained again
    summary = json.loads((tmp_path / "figure5.json").read_text())
    assert summary["mnist"]["original"]["parameters"] == 1_663_370


@pytest.mark.slow  # about 20 s; CI runs the slow tests after the default suite
def test_mnist_reuse_outputs_trains_only_the_new_runs(data_dir, tmp_path, monkeypatch):
    """`--mnist-reuse-outputs` rebuilds the runs of an earlier panel in the folder from its
    CSVs and JSON (the store is gone, as on a fresh clone of results/) and trains only the
    runs it lacks; the claims of the reused runs are unchanged."""
    import shutil

    from mnist_tutorial import train as tutorial_train

    flags = ("--panels", "right", "--self-test", "--mnist-seeds", "66478")
    _run(figure5, tmp_path, data_dir, *flags)
    first = json.loads((tmp_path / "claims.json").read_text())
    shutil.rmtree(tmp_path / ".curves")
    real, trained = tutorial_train.train_and_evaluate, []

    def counted(config, progress=None):
        trained.append((config.seed, config.factor_convs))
        return real(config, progress)

    monkeypatch.setattr(tutorial_train, "train_and_evaluate", counted)
    _run(figure5, tmp_path, data_dir, *flags, "--mnist-convs", "--mnist-reuse-outputs")
    assert trained == [(66478, True)]
    rows = json.loads((tmp_path / "claims.json").read_text())
    again = [r for r in rows if "convolutions factored too" not in r["claim"]]
    assert [(r["claim"], r["verdict"]) for r in again] == [(r["claim"], r["verdict"]) for r in first]
    assert sum("convolutions factored too" in r["claim"] for r in rows) == 6
    summary = json.loads((tmp_path / "figure5.json").read_text())["mnist"]
    assert summary["original"]["seed_numbers"] == [66478]
    trained.clear()  # without the flag, the runs are trained again
    _run(figure5, tmp_path, data_dir, *flags)
    assert trained == [(66478, False), (66478, False)]


def test_resume_after_interruption_gives_identical_outputs(data_dir, tmp_path, monkeypatch, capsys):
    real, calls = runs.train_family, []

    def counted(spec, *args, **kwargs):
        calls.append(spec.label)
        return real(spec, *args, **kwargs)

    monkeypatch.setattr(runs, "train_family", counted)
    _run(figure3, tmp_path / "whole", data_dir, "--losses", "4")
    whole = len(calls)  # the three l4 curves, each on its grid and at the rates its tuning added
    first = calls.count(figure3.label(1))  # the sweeps of the first curve

    def interrupted(spec, *args, **kwargs):
        if len(calls) == first + 1:  # the first curve is done, the second one started
            raise KeyboardInterrupt
        return counted(spec, *args, **kwargs)

    calls.clear()
    monkeypatch.setattr(runs, "train_family", interrupted)
    with pytest.raises(SystemExit) as stopped:
        _run(figure3, tmp_path / "cut", data_dir, "--losses", "4")
    assert stopped.value.code == 130
    message = capsys.readouterr().err.strip().splitlines()[-1]
    assert "interrupted" in message and "--resume" in message
    finished = list((tmp_path / "cut" / ".curves").rglob("*.json"))
    assert len(finished) == 1 and not (tmp_path / "cut" / "figure3.csv").exists()
    calls.clear()
    monkeypatch.setattr(runs, "train_family", counted)
    _run(figure3, tmp_path / "cut", data_dir, "--losses", "4", "--resume")
    # Only what had not finished ran again (a curve whose tuning was interrupted is
    # trained again in full).
    assert len(calls) == whole - first
    assert capsys.readouterr().err.count("finished earlier, reused") == len(finished)
    for name in ("figure3.csv", "figure3_runs.csv"):
        assert (tmp_path / "whole" / name).read_bytes() == (tmp_path / "cut" / name).read_bytes(), name


def _tensorboard_runs(folder):
    """{run folder: (scalars {tag: {step: value}}, hparams {name: value})} of a log folder."""
    import tensorflow as tf
    from tensorboard.plugins.hparams import plugin_data_pb2

    runs = {}
    for path in folder.rglob("events.out.tfevents.*"):
        scalars, hparams = {}, {}
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                if value.metadata.plugin_data.plugin_name == "hparams":
                    data = plugin_data_pb2.HParamsPluginData.FromString(value.metadata.plugin_data.content)
                    if data.HasField("session_start_info"):
                        for name, v in data.session_start_info.hparams.items():
                            hparams[name] = getattr(v, v.WhichOneof("kind"))
                    if data.HasField("experiment"):
                        hparams["__experiment__"] = sorted(m.name.tag for m in data.experiment.metric_infos)
                elif value.metadata.plugin_data.plugin_name != "text":  # the experiment's settings
                    scalars.setdefault(value.tag, {})[event.step] = float(tf.make_ndarray(value.tensor))
        runs[str(path.parent.relative_to(folder))] = (scalars, hparams)
    return runs


def _hparams_experiment(folder):
    """The experiment and session groups as TensorBoard's HParams plugin serves them (its
    own data layer, in process)."""
    from tensorboard import context
    from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer
    from tensorboard.plugins import base_plugin
    from tensorboard.plugins.hparams import api_pb2, backend_context, list_session_groups

    mux = plugin_event_multiplexer.EventMultiplexer()
    mux.AddRunsFromDirectory(str(folder))
    mux.Reload()
    provider = data_provider.MultiplexerDataProvider(mux, str(folder))
    backend = backend_context.Context(
        base_plugin.TBContext(logdir=str(folder), multiplexer=mux, data_provider=provider)
    )
    ctx = context.RequestContext()
    experiment = backend.experiment_from_metadata(
        ctx, "", True, backend.hparams_metadata(ctx, ""), backend.hparams_from_data_provider(ctx, "", limit=None)
    )
    statuses = [api_pb2.STATUS_UNKNOWN, api_pb2.STATUS_SUCCESS, api_pb2.STATUS_FAILURE, api_pb2.STATUS_RUNNING]
    request = api_pb2.ListSessionGroupsRequest(start_index=0, slice_size=1000, allowed_statuses=statuses)
    groups = list_session_groups.Handler(ctx, backend, "", request).run().session_groups
    return experiment, groups


def test_tensorboard_shows_what_varies_every_rate_and_no_sentinels(data_dir, tmp_path):
    _run(figure3, tmp_path, data_dir, "--losses", "4", "--tensorboard", str(tmp_path / "tb"))
    frame = outputs.read_curves(tmp_path / "figure3.csv")
    experiment, groups = _hparams_experiment(tmp_path / "tb" / "figure3")
    infos = {h.name: h for h in experiment.hparam_infos}
    # Only what varies, with domains; TensorBoard ticks the first five by name.
    assert sorted(infos) == ["depth", "learning_rate", "selected", "tuning"]  # l4 only: p is constant
    assert list(infos["depth"].domain_discrete.values) and infos["learning_rate"].HasField("domain_interval")
    assert [m.name.tag for m in experiment.metric_infos] == [
        "final_loss", "final_relative_excess", "iterations_to_level", "diverged", "diverged_at"
    ]  # fmt: skip
    # One session per trained (rate, curve, seed), the tuned rates included, as in the CSV.
    trained = frame.drop_duplicates(["curve", "learning_rate", "seed"])
    assert len(groups) == len(trained) > 9 and set(frame["tuning"]) == {"grid", "tuning"}
    for group in groups:
        metrics = {m.name.tag: m.value for m in group.metric_values}
        assert all(v >= 0 for v in metrics.values())  # no -1 sentinels
        assert ("diverged_at" in metrics) == (metrics["diverged"] == 1) and ("final_loss" in metrics) != (
            metrics["diverged"] == 1
        )
    runs = _tensorboard_runs(tmp_path / "tb")
    scalars, hparams = runs["figure3/depth-2_net_l4/lr=0.01"]
    assert hparams["depth"] == "2" and hparams["learning_rate"] == pytest.approx(0.01) and hparams["tuning"] == "grid"
    assert {"loss", "excess_loss", "relative_excess", "end_to_end_norm", "balancedness"} <= set(scalars)
    rows = frame[(frame["curve"] == "depth-2 net") & np.isclose(frame["learning_rate"], 0.01)]
    np.testing.assert_allclose(scalars["loss"][60], rows[rows["step"] == 60]["loss"].item(), rtol=1e-6)
    # Exactly one rate per curve is the selected one, as in the CSV.
    for curve in ("linear_model_(depth_1)_l4", "depth-2_net_l4", "depth-3_net_l4"):
        chosen = [name for name, (_, h) in runs.items() if name.startswith(f"figure3/{curve}/") and h["selected"]]
        assert len(chosen) == 1, (curve, chosen)
    # Balancedness is relative (<= 2 by the triangle inequality), the linear model has none.
    assert all(0 <= v <= 2 for v in scalars["balancedness"].values())
    assert "balancedness" not in runs["figure3/linear_model_(depth_1)_l4/lr=0.01"][0]


def test_claims_file_keeps_other_figures_and_panels(tmp_path):
    claims = ClaimsFile(tmp_path)
    claims.replace("figure3", [Claim("figure3", "c", "k", "m", "PASS")], "cmd3")
    claims.replace(
        "figure5",
        [
            Claim("figure5", "left", "k", "m", "FAIL", panel="left"),
            Claim("figure5", "right", "k", "m", "PASS", panel="right"),
        ],
        "cmd5",
    )
    claims.replace("figure3", [Claim("figure3", "c2", "k", "m", "INCONCLUSIVE")], "cmd3b")
    claims.replace("figure5", [Claim("figure5", "left2", "k", "m", "PASS", panel="left")], "cmd5b", ["left"])
    rows = json.loads((tmp_path / "claims.json").read_text())
    assert [(r["figure"], r["claim"], r["command"]) for r in rows] == [
        ("figure3", "c2", "cmd3b"),
        ("figure5", "right", "cmd5"),
        ("figure5", "left2", "cmd5b"),
    ]
    assert "- figure3: `cmd3b`" in (tmp_path / "claims.md").read_text()


@pytest.mark.slow  # about 15-40 s; CI runs the slow tests after the default suite
def test_sensitivity_quick(data_dir, tmp_path):
    common_flags = ["--quick", "--out", str(tmp_path), "--data-dir", data_dir, "--lrs", "0.001,0.01,0.1"]
    sensitivity.main(
        [
            *common_flags,
            "--figure3-steps",
            "40",
            "--figure5-steps",
            "40",
            "--figures",
            "3,5",
            "--preprocessings",
            "standardize,maxabs",
            "--seeds",
            "0,1",
        ]
    )
    frame = pd.read_csv(tmp_path / "sensitivity.csv")
    # 3 levels x 2 preprocessings x 2 seeds x 2 budgets x (2 Figure 3 claims + 4 Figure 5 claims),
    # and Figure 3's l4 speed-up claim tuned and on the grid at the longest budget and the default level
    assert len(frame) == 3 * 2 * 2 * 2 * 6 + 2 * 2 * 2
    speedup_rows = frame[frame["claim"].str.contains("speed-up")]
    assert set(speedup_rows["budget"]) == {200} and set(speedup_rows["level"]) == {0.2}
    assert set(frame["budget"]) == {40, 200} and set(frame["level"]) == {0.2, 0.1, 0.05}
    assert "| claim | level | PASS | FAIL | INCONCLUSIVE | settings |" in (tmp_path / "sensitivity.md").read_text()
    # Judging at other levels later reuses the stored curves (no training) and replaces the rows.
    sensitivity.main(
        [
            *common_flags,
            "--figure3-steps",
            "40",
            "--figure5-steps",
            "40",
            "--figures",
            "3",
            "--preprocessings",
            "standardize,maxabs",
            "--seeds",
            "0,1",
            "--extra-levels",
            "0.5",
            "--resume",
        ]
    )
    again = pd.read_csv(tmp_path / "sensitivity.csv")
    assert set(again[again["figure"] == "figure3"]["level"]) == {0.2, 0.5}
    assert set(again[again["figure"] == "figure5"]["level"]) == {0.2, 0.1, 0.05}
    # A longer budget for one preprocessing and seed adds its rows and keeps all others.
    sensitivity.main(
        [
            *common_flags,
            "--figure3-steps",
            "40",
            "--figure5-steps",
            "40",
            "--figures",
            "5",
            "--preprocessings",
            "maxabs",
            "--seeds",
            "1",
            "--budget-factors",
            "2",
        ]
    )
    longer = pd.read_csv(tmp_path / "sensitivity.csv")
    assert len(longer) == len(again) + 3 * 4
    assert set(longer[longer["figure"] == "figure5"]["budget"]) == {40, 80, 200}
    pd.testing.assert_frame_equal(longer.iloc[: len(again)].drop(columns="started"), again.drop(columns="started"))


def test_sensitivity_judges_a_truncated_family_like_a_shorter_run(data_dir):
    """The shorter budget of the sensitivity study is the prefix of the longer run: the
    same summaries as training that budget directly."""
    from tfovp.families import CurveSpec
    from tfovp.problem import Problem

    problem = Problem.load("ethanol", data_dir=data_dir)
    spec = CurveSpec("depth-2 net", depth=2, loss=4.0)
    long = runs.train_family(spec, problem, steps=400, grid=(1e-3, 1e-2, 1e-1), seeds=[0])
    short = runs.train_family(spec, problem, steps=100, grid=(1e-3, 1e-2, 1e-1), seeds=[0])
    cut = long.truncated(100)
    shared = np.isin(short.steps, cut.steps)
    np.testing.assert_array_equal(short.losses[shared], cut.losses[np.isin(cut.steps, short.steps)])
    assert cut.summary(0.9).to_json()["diverged_rates"] == short.summary(0.9).to_json()["diverged_rates"]


def test_settings_key_ignores_bookkeeping_flags():
    a = figure3.Config(resume=True, tensorboard="x")
    assert settings_key(a, common.BOOKKEEPING) == settings_key(figure3.Config(), common.BOOKKEEPING)
    assert settings_key(figure3.Config(steps=5), common.BOOKKEEPING) != settings_key(
        figure3.Config(), common.BOOKKEEPING
    )
    # Settings added later count only when changed: the stores written before them stay valid.
    before = {k: v for k, v in dataclasses.asdict(figure3.Config().curve_settings()).items()}
    for name in common.ADDED_SETTINGS:
        before.pop(name)
    key = settings_key(figure3.Config().curve_settings(), common.BOOKKEEPING, common.ADDED_SETTINGS)
    assert key == digest({k: v for k, v in before.items() if k not in common.BOOKKEEPING})
    widened = figure3.Config(hidden_widths=3).curve_settings()
    assert settings_key(widened, common.BOOKKEEPING, common.ADDED_SETTINGS) != key


@pytest.mark.slow  # every figure's quick run again (~1 minute); each figure has its own quick test
def test_all_quick_writes_every_figure_without_the_mnist_panel(data_dir, tmp_path):
    from reproduce import all as all_figures

    results = all_figures.main(["--quick", "--steps", "40", "--out", str(tmp_path), "--data-dir", data_dir])
    assert set(results) == {"figure3", "figure2", "figure4", "figure5", "figure3-abalone"}
    for figure in ("figure2", "figure3", "figure4", "figure5", "figure3-abalone"):
        assert (tmp_path / f"{figure}.png").is_file()
    summary = json.loads((tmp_path / "figure5.json").read_text())
    assert "mnist" not in summary and summary["config"]["steps"] == 40


def test_runner_reuses_a_stored_family_only_with_resume_or_within_one_command(tmp_path, monkeypatch):
    from reproduce.study.progress import Job
    from reproduce.study.store import RecordStore
    from tfovp.families import CurveFamily, CurveSpec
    from tfovp.problem import Problem

    rng = np.random.default_rng(0)
    problem = Problem(rng.normal(size=(20, 3)), rng.normal(size=(20, 1)))
    real, trained = runs.train_family, []
    monkeypatch.setattr(runs, "train_family", lambda spec, *a, **k: trained.append(spec.label) or real(spec, *a, **k))

    def runner(resume, job, seed=0):
        store = RecordStore(tmp_path, CurveFamily.from_json)
        return runs.FamilyRunner(
            problem, store, steps=10, grid=(0.01,), seed=seed, level=0.2, rho=None, resume=resume, job=job
        )

    spec = CurveSpec("depth-2 net", depth=2)
    first = Job("first")
    runner(False, first).family(spec)
    runner(False, first).family(spec)  # the same command: reused
    runner(False, Job("second")).family(spec)  # a new command without --resume: trained again
    assert trained == ["depth-2 net", "depth-2 net"]
    again = runner(True, Job("third")).family(spec)  # --resume: reused
    assert trained == ["depth-2 net", "depth-2 net"] and again.losses.shape == (11, 1)
    # Another seed in the same store (the map's store folder does not name the seed): its
    # own family, never seed 0's, and each seed's reused with --resume.
    for seed in (1, 2):
        other = runner(True, Job("fourth"), seed=seed).family(spec)
        assert list(other.seeds) == [seed] and not np.array_equal(other.losses, again.losses)
    runner(True, Job("fifth"), seed=2).family(spec)
    assert trained == ["depth-2 net"] * 4


def test_runner_goes_on_from_a_stored_family_not_yet_tuned_within_its_budgets(tmp_path, monkeypatch):
    # A store written before the tuning searched within the kept budgets: with --resume the
    # runner trains only the stages "within 6" and stores the result; then it is reused
    # as it is, and the cluster path has no unit left for it.
    from reproduce.study.progress import Job
    from reproduce.study.store import RecordStore
    from tfovp import speedup
    from tfovp.families import CurveFamily, CurveSpec, at_rates, tune_family
    from tfovp.problem import Problem

    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 4))
    problem = Problem(x, x @ rng.normal(size=(4, 1)) + 0.3 * rng.normal(size=(40, 1)), "random", "none", "mean")
    spec, grid = CurveSpec("depth 2", depth=2, hidden_widths=3, loss=4.0), (0.01, 0.1, 3.2)
    real, trained = runs.train_family, []
    monkeypatch.setattr(
        runs, "train_family", lambda s, *a, **k: trained.append(len(s.learning_rates or grid)) or real(s, *a, **k)
    )
    job = Job("t")
    runner = runs.FamilyRunner(
        problem,
        RecordStore(tmp_path, CurveFamily.from_json),
        steps=60,
        grid=grid,
        seed=0,
        level=0.2,
        rho=2.0,
        resume=True,
        job=job,
        budgets=(6,),
    )

    def train(rates, stage="grid"):
        return real(at_rates(spec, rates, grid), problem, steps=60, grid=grid, seeds=[0], budgets=(6,))

    runner.store.put(runner.key(spec, [0]), tune_family(train, grid, speedup.LEVELS, 2.0))
    assert len(runner.units([spec])) == 1
    family = runner.family(spec)
    assert (
        family.tuned_within == (6,)
        and trained
        and all(stage.name.endswith("within 6") for stage in family.tuning_stages[2:])
    )
    assert [s.name for s in family.tuning_stages[:2]] == ["grid", "refine to 2"]
    done = len(trained)
    assert runner.family(spec).tuned_within == (6,) and len(trained) == done and runner.units([spec]) == []


def test_theorem2_quick(data_dir, tmp_path):
    from reproduce import theorem2

    summary = theorem2.main(["--quick", "--out", str(tmp_path), "--data-dir", data_dir])
    circulations = {int(k): v for k, v in summary["circulations"].items()}
    assert abs(circulations[1]["values"][-1]) < 1e-9 and abs(circulations[3]["values"][-1]) > 1.0
    assert [c["verdict"] for c in summary["claims"]] == ["PASS", "PASS"]
    assert (tmp_path / "theorem2.png").is_file() and len(pd.read_csv(tmp_path / "theorem2.csv")) == 12


def test_section7_quick(tmp_path):
    from reproduce import section7

    summary = section7.main(["--quick", "--out", str(tmp_path)])
    runs = summary["runs"]
    assert runs["end-to-end rule, N = 2"]["time_to_half_w2"][0] <= 3  # w1 in one step, then w2 at once
    assert min(t for t in runs["GD on w"]["time_to_half_w2"] if t is not None) > 100
    assert summary["claims"][0]["verdict"] == "PASS" and (tmp_path / "section7.png").is_file()


@pytest.mark.slow  # about 15-40 s; CI runs the slow tests after the default suite
def test_blog_l4_quick(data_dir, tmp_path):
    from reproduce import blog_l4

    summary = blog_l4.main(["--quick", "--out", str(tmp_path), "--data-dir", data_dir])
    table = pd.read_csv(tmp_path / "blog_l4.csv")
    assert len(table) == 2 and summary["screened"] == 2
    # Per-example unit norm can fit below the figure's lowest point (0.008); standardized features cannot.
    plausible = dict(zip(table["features"], table["plausible"]))
    assert plausible == {"standardize": False, "unit-norm": True}
    assert summary["closest"]["setting"] == "unit-norm:minmax:none, mean" and (tmp_path / "blog_l4.png").is_file()
    assert summary["closest_tuned"]["setting"] == "unit-norm:minmax:none, mean"
    assert (tmp_path / "blog_l4_tuned.png").is_file()
    # Curves are compared normalized by L(0): the published ones by their 5.
    assert blog_l4.distance({m: ([0, 10], [1.0, 0.2], 0.1) for m in blog_l4.PUBLISHED}, [0]) == 0.0


@pytest.mark.slow  # about 15-40 s; CI runs the slow tests after the default suite
def test_acceleration_quick(data_dir, tmp_path):
    from reproduce import acceleration

    summary = acceleration.main(
        [
            "--quick",
            "--settings",
            "default,synthetic-2dec",
            "--steps",
            "100",
            "--out",
            str(tmp_path),
            "--data-dir",
            data_dir,
        ]
    )
    table = pd.read_csv(tmp_path / "acceleration.csv")
    assert set(table["setting"]) == {"default", "synthetic-2dec"} and set(table["depth"]) == {2, 3, 4}
    assert summary["settings"]["synthetic-2dec"]["optimum"] == 0.0  # exactly solvable: L* = 0
    assert np.isinf(summary["settings"]["synthetic-2dec"]["initial_over_optimum"])
    assert (tmp_path / "acceleration.png").is_file() and (tmp_path / "acceleration_profiles.png").is_file()
    # Where each tuned time's search stopped, and one rate per run beside the per-level oracle.
    assert {"depth_capped", "depth_lr_below", "depth_lr_above", "linear_capped", "one_rate_speedup"} <= set(table)
    written = json.loads((tmp_path / "acceleration.json").read_text())["settings"]["default"]
    assert set(written["non_monotone_divergence"]) == {"1", "2", "3", "4"}
    assert len(written["comparisons"]["2"]["contender_capped"]) == len(written["comparisons"]["2"]["levels"])
    # The same run keeping a shorter budget: its own outputs unchanged (the same trajectories
    # and recorded steps), and beside them the comparisons of the run cut at the budget.
    kept = tmp_path / "kept"
    again = acceleration.main(
        ["--quick", "--settings", "synthetic-2dec", "--steps", "100", "--budgets", "40", "--out", str(kept)]
    )
    first = table[table["setting"] == "synthetic-2dec"].reset_index(drop=True)
    pd.testing.assert_frame_equal(pd.read_csv(kept / "acceleration.csv"), first, check_dtype=False)
    cut = pd.read_csv(kept / "acceleration_budgets.csv")
    assert set(cut["budget"]) == {40} and len(cut) == len(first)
    times = cut[["T_linear", "T_depth"]].to_numpy(dtype=float)
    assert (times[np.isfinite(times)] <= 40).all()
    assert np.isinf(cut["T_linear"]).sum() > np.isinf(first["T_linear"]).sum()  # the linear model's late levels
    written = json.loads((kept / "acceleration.json").read_text())["settings"]["synthetic-2dec"]
    assert set(written["budgets"]["40"]["comparisons"]) == {"2", "3", "4"} and again["settings"]
    assert written["budgets"]["40"]["tuned_within"] is True  # the tuning also searched within 40
    with pytest.raises(SystemExit) as stopped:
        acceleration.main(["--quick", "--steps", "100", "--budgets", "100", "--out", str(kept)])
    assert stopped.value.code == 2


def test_capped_rates_of_a_map_written_before_caps_are_marked_and_read_as_bounds(tmp_path):
    from reproduce import migrate_caps

    grid = [1e-5, 0.5]
    table = pd.DataFrame(
        {
            "setting": ["s", "s", "s"],
            "depth": [2, 2, 3],
            "level": [0.1, 0.01, 0.1],
            "speedup": [2.5, 3.0, 0.5],
            "kind": ["exact", "exact", "upper bound"],
            "lr_linear": [30.6, 30.6, 8e-8],
            "lr_depth": [62.5, 40.0, ""],
            "linear_near_edge": [True, True, False],
            "depth_near_edge": [False, True, ""],
        }
    )
    table.to_csv(tmp_path / "acceleration.csv", index=False)
    comparisons = {"2": {"kind": ["exact", "exact"]}, "3": {"kind": ["upper bound"]}}
    summary = {"config": {"lrs": grid}, "settings": {"s": {"comparisons": comparisons}}}
    (tmp_path / "acceleration.json").write_text(json.dumps(summary))
    assert migrate_caps.migrate(tmp_path / "acceleration.csv") == 2
    marked = pd.read_csv(tmp_path / "acceleration.csv", keep_default_na=False)
    # 62.5 = 0.5 x 5^3: nothing tried above it, S only a lower bound; 8e-8 = 1e-5 / 5^3, the linear model's
    # time a bound: an upper bound stays one.
    assert list(marked["depth_capped"]) == ["high", "", ""] and list(marked["linear_capped"]) == ["", "", "low"]
    assert list(marked["kind"]) == ["lower bound", "exact", "upper bound"]
    assert list(marked["lr_linear"].astype(str)) == ["30.6", "30.6", "8e-08"]  # values kept as written
    data = json.loads((tmp_path / "acceleration.json").read_text())["settings"]["s"]["comparisons"]
    assert data["2"]["kind"] == ["lower bound", "exact"] and data["2"]["contender_capped"] == ["high", None]
    with pytest.raises(ValueError, match="without caps"):
        migrate_caps.migrate(tmp_path / "acceleration.csv")


def test_profiles_on_known_times():
    from reproduce import acceleration

    def made(times):  # depth -> (J,) times at three levels
        return acceleration.Measured(acceleration.SETTINGS["default"], 1.0, 0.1, 1.0, {}, times, times, {}, {}, 0.0)

    measured = [
        made({1: np.array([100.0]), 2: np.array([50.0]), 3: np.array([np.inf]), 4: np.array([400.0])}),
        made({1: np.array([10.0]), 2: np.array([20.0]), 3: np.array([5.0]), 4: np.array([np.inf])}),
    ]
    data, performance = acceleration.profiles(measured, 0)
    assert list(data[1]) == [10.0, 100.0] and list(data[3]) == [5.0, np.inf]
    assert list(performance[2]) == [1.0, 4.0] and list(performance[4]) == [8.0, np.inf]


def test_variant_claims_read_as_sentences():
    from reproduce.mnist_panel import _variant_claim

    names = [  # the first two claims of criteria.mnist
        "MNIST: the overparameterized tutorial converges considerably faster",
        "MNIST: the overparameterized tutorial's cross-entropy (without the L2 term) converges considerably faster",
    ]
    assert [_variant_claim(n, "overparameterized, L2 on factors") for n in names] == [
        "MNIST, overparameterized, L2 on factors: converges considerably faster",
        "MNIST, overparameterized, L2 on factors: the cross-entropy (without the L2 term) converges considerably "
        "faster",
    ]


def test_the_claims_table_pairs_each_claim_with_its_speed_up_and_the_readme_counts_them(tmp_path):
    """Hand-made claims: a threshold claim and its "(speed-up)" row share one row of the
    full table (both verdicts, both measurements); a figure's counts in the README table
    count every row; the figures come in the paper's order."""
    from reproduce import report

    ClaimsFile(tmp_path).replace(
        "figure4", [Claim("figure4", "AdaGrad is slower", "k", "a", "INCONCLUSIVE")], "python -m reproduce.figure4"
    )
    claims = [
        Claim("figure3-1e6", "l4: deeper is faster", "k", "T 5 vs 9", "PASS"),
        Claim("figure3-1e6", "l4: deeper is faster (speed-up)", "k", "S = 0.8", "FAIL"),
        Claim("figure3-1e6", "l2: not faster", "k", "T 3 vs 3", "PASS"),
    ]
    ClaimsFile(tmp_path).replace("figure3-1e6", claims, "python -m reproduce.figure3 --tag 1e6")
    full = report.claims_table(tmp_path, ".")
    assert "| l4: deeper is faster | **PASS** | **FAIL** | T 5 vs 9; speed-up: S = 0.8 |" in full
    assert "| l2: not faster | **PASS** | – | T 3 vs 3 |" in full and "(speed-up) |" not in full
    assert full.index("## figure3-1e6") < full.index("## figure4")
    lines = report.figures_table(tmp_path, "results").splitlines()
    assert lines[2].startswith("| [figure3-1e6](results/claims_table.md#figure3-1e6) | Fig. 3 (1e6) | 2 | 1 | 0 |")
    assert lines[3].startswith("| [figure4](results/claims_table.md#figure4) | Fig. 4 | 0 | 0 | 1 |")


def test_run_summary_envelope_round_trip_and_a_missing_field_named(tmp_path, capsys):
    from reproduce import report
    from reproduce.study.provenance import RunSummary

    envelope = RunSummary("figure9", "python -m x", {"steps": 3}, {"python": "3"}, {"cpu_count": 2}, 1.5, 2.0)
    data = envelope.to_json(claims=[], curves={"a": 1})
    assert list(data)[:7] == [*RunSummary.FIELDS, "training_seconds"] and data["curves"] == {"a": 1}
    assert RunSummary.from_json(json.loads(json.dumps(data))) == (envelope, {"claims": [], "curves": {"a": 1}})
    assert "training_seconds" not in dataclasses.replace(envelope, training_seconds=None).to_json()
    del data["machine"]
    with pytest.raises(ValueError, match="lacks machine"):
        RunSummary.from_json(data)
    (tmp_path / "figure3.json").write_text(json.dumps(data))
    with pytest.raises(SystemExit):
        report.main(["--out", str(tmp_path), "--readme", str(tmp_path / "none.md")])
    assert "figure3.json: lacks machine; rerun its command" in capsys.readouterr().err


@pytest.mark.unit
def test_a_regenerated_page_keeps_its_hand_written_findings(tmp_path):
    from reproduce.study import findings

    page = tmp_path / "figure9.md"
    findings.write_page(page, "# figure9", "| table | v1 |\n")
    assert findings.findings_of(page) == ""
    written = page.read_text().replace(findings.END, "## What the run shows\n\nDepth helps late.\n" + findings.END)
    page.write_text(written)
    findings.write_page(page, "# figure9", "| table | v2 |\n")  # the run's tables change
    text = page.read_text()
    assert "| table | v2 |" in text and "| table | v1 |" not in text
    assert findings.findings_of(page) == "## What the run shows\n\nDepth helps late."
    assert text.index("# figure9") < text.index("Depth helps late.") < text.index("| table | v2 |")


def test_the_budget_table_sets_each_budgets_speedups_side_by_side(tmp_path):
    from reproduce import report

    def record(budget, values, kinds=None):
        levels = [0.1, 0.05, 0.01, 0.0001]
        return {
            "levels": levels,
            "speedup": values,
            "kind": kinds or ["exact"] * len(values),
            "budget": budget,
            "tuned": True,
        }

    def envelope(figure, config, **body):
        return {
            "figure": figure,
            "command": f"python -m reproduce.{figure}",
            "config": config,
            "versions": {},
            "machine": {},
            "elapsed_seconds": 1.0,
            **body,
        }

    short = {
        "depth-2 net vs linear model (depth 1) (l4)": record(
            20000, [1.95, 1.02, None, None], ["exact", "lower bound", "no data", "no data"]
        )
    }
    (tmp_path / "figure3.json").write_text(
        json.dumps(envelope("figure3", {"dataset": "ethanol", "seed": 0}, speedup=short))
    )
    settings = {
        "default": {"comparisons": {"2": record(100000, [1.36, 2.83, 1.34, None])}},
        "p6": {"comparisons": {"2": record(100000, [3.0, 11.4, None, None])}},  # one budget only: no row
    }
    (tmp_path / "acceleration.json").write_text(json.dumps(envelope("acceleration", {}, settings=settings)))
    table = report.budget_table(tmp_path)
    assert "| default | 2 | 1.95 / > 1.02 / – / – | 1.36 / 2.83 / 1.34 / – |" in table
    assert "| p6 |" not in table and "20,000 iterations | 100,000 iterations" in table
    # A rerun of one budget with fewer bounds replaces the capped one; the step at which the
    # rate above the deep net's diverged is shown where the record keeps it.
    capped = record(100000, [0.25, 0.2, 0.6, 2.67], ["lower bound"] * 4)
    rerun = {
        **record(100000, [0.333, 0.333, 0.75, 6.22]),
        "contender_lr": [4.0, 4.0, 128.0, 128.0],
        "contender_above": [4.8, 4.8, 154.0, 154.0],
        "contender_above_diverged_at": [61234, 61234, None, None],
    }
    later = record(1000000, [0.333, 0.333, 0.75, 6.22])
    for name, (budget_record) in (("acceleration-a", capped), ("acceleration-b", rerun), ("acceleration-c", later)):
        body = {"synthetic": {"comparisons": {"2": budget_record}}}
        (tmp_path / f"{name}.json").write_text(json.dumps(envelope("acceleration", {}, settings=body)))
    table = report.budget_table(tmp_path)
    assert "| synthetic | 2 |  | 0.333 / 0.333 / 0.75 / 6.22 (lr 4; 4.8 diverged at 61,234) | 0.333 /" in table
    # A run that kept shorter budgets gets a table of its own: one run, cut at each.
    body = {"s": {"comparisons": {"2": later}, "budgets": {"20000": {"comparisons": {"2": capped}}}}}
    (tmp_path / "acceleration-d.json").write_text(
        json.dumps(envelope("acceleration", {"steps": 1000000}, settings=body))
    )
    table = report.budget_table(tmp_path)
    assert "From one run cut at each budget, `python -m reproduce.acceleration`" in table
    assert "| s | 2 | > 0.25 / > 0.2 / > 0.6 / > 2.67 | 0.333 / 0.333 / 0.75 / 6.22 |" in table
    assert "searched around the full run's best rates only" in table  # a run before the search within
    body["s"]["budgets"]["20000"]["tuned_within"] = True
    (tmp_path / "acceleration-d.json").write_text(
        json.dumps(envelope("acceleration", {"steps": 1000000}, settings=body))
    )
    assert "both rates tuned within each budget to the run's ρ" in report.budget_table(tmp_path)


def _map_setting(values, kinds=None, depth=2, one_rate=None):
    """A map setting's JSON record with one tuned comparison of `depth` over depth 1 at
    levels 0.1, 0.01, 0.001 (rho 1.2), and the one-rate protocol's S if given."""
    record = {
        "levels": [0.1, 0.01, 0.001],
        "speedup": values,
        "kind": kinds or ["exact"] * len(values),
        "budget": 100000,
        "tuned": True,
        "rho": 1.2,
        "baseline_time": [10.0] * len(values),
        "contender_time": [10.0] * len(values),
        "contender": f"depth {depth}",
        "baseline": "depth 1",
        "any_all_diverged": False,
        "grid": None,
    }
    if one_rate is not None:
        record["one_rate"] = {
            "level": 0.001,
            "baseline_lr": 0.1,
            "contender_lr": 0.2,
            "baseline_capped": None,
            "contender_capped": None,
            "speedup": one_rate,
            "kind": ["exact"] * len(one_rate),
            "baseline_time": [10.0] * len(one_rate),
            "contender_time": [10.0] * len(one_rate),
        }
    return {"comparisons": {str(depth): record}}


def test_the_maps_tally_counts_a_speedup_within_noise_apart():
    from reproduce import report

    summary = {
        "settings": {
            "clear": _map_setting([1.0, 2.5, 3.0]),  # 2.5 / 1.2 >= 2: established
            "close": _map_setting([1.0, 2.07, 0.5]),  # 2.07: within noise of 2
            "bound": _map_setting([None, 2.3, None], ["no data", "lower bound", "no data"]),  # > 2.3: within noise
            "slow": _map_setting([0.5, 0.9, 1.6]),  # 1.6 * 1.2 < 2: no
            "large": _map_setting([11.4, 3.0, 2.0]),  # >= 2 established; 11.4 within noise of 10
        }
    }
    lines = report.tally_lines(summary)
    assert "Settings of 5" in lines[0]
    assert lines[-2].startswith("| 2× | 2 + 2 |") and lines[-1].startswith("| 10× | 0 + 1 |")
    # With one rate per model recorded, its tally beside: the one run's S may be slower at
    # the levels the oracle gave other rates.
    recorded = {
        name: _map_setting(data["comparisons"]["2"]["speedup"], data["comparisons"]["2"]["kind"], one_rate=one)
        for (name, data), one in zip(
            summary["settings"].items(),
            ([1.0, 1.5, 3.0], [1.0, 1.2, 0.5], [1.0, 1.0, 1.0], [0.5, 0.9, 1.6], [4.0, 3.0, 2.0]),
        )
    }
    lines = report.tally_lines({"settings": recorded})
    assert lines[-4:] == [
        "| 2× | 2 + 2 | 0 + 0 | 0 + 0 |",
        "| 10× | 0 + 1 | 0 + 0 | 0 + 0 |",
        "| 2×, one rate per model | 2 + 0 | 0 + 0 | 0 + 0 |",
        "| 10×, one rate per model | 0 + 0 | 0 + 0 | 0 + 0 |",
    ]


def test_the_map_over_seeds_counts_a_setting_only_where_every_seed_establishes_it():
    from reproduce import acceleration_seeds as seeds

    per_seed = {  # setting -> S at 0.1, 0.01, 0.001 in seeds 0, 1, 2
        "every": ([1.0, 2.5, 3.0], [1.0, 2.6, 3.1], [2.41, 1.0, 1.0]),  # 2.41 / 1.2 >= 2 too
        "varies": ([1.0, 2.5, 3.0], [1.0, 2.07, 1.0], [1.0, 2.5, 3.0]),  # seed 1 within noise only
        "none": ([0.5, 0.9, 1.6], [0.5, 1.0, 1.2], [1.66, 1.0, 1.0]),  # 1.66 * 1.2 < 2 everywhere
        "close": ([1.0, 1.7, 1.0], [1.0, 1.7, 1.0], [1.0, 1.7, 1.0]),  # 1.7 * 1.2 >= 2: within noise: varies
    }
    runs = {k: {"settings": {name: _map_setting(v[k]) for name, v in per_seed.items()}} for k in range(3)}
    found = {f.setting: f for f in seeds.combine(runs)}
    assert {name: f.over_seeds[2.0] for name, f in found.items()} == {
        "every": seeds.EVERY, "varies": seeds.VARIES, "none": seeds.NONE, "close": seeds.VARIES,
    }  # fmt: skip
    assert found["varies"].per_seed[2.0] == ["established", "within noise", "established"]
    assert all(f.over_seeds[10.0] == seeds.NONE for f in found.values())
    assert seeds.spread([s for c in found["every"].speedups.values() for s in c.speedups[1:2]]) == (2.5, 1.0, 2.6)
    body = seeds.page_body(list(found.values()), [0, 1, 2])
    assert "| every | 2 | E E E | in every seed | in no seed | – | – | – | 1 (1–2.41) | 2.5 (1–2.6) |" in body
    assert "| 2 | 2× | per-level oracle | 1 | 2 | 1 |" in body and "one rate per model" not in body
    # The one-rate protocol's classes beside, from its own S (here slower at 0.01 in seed 1).
    runs = {
        k: {
            "settings": {
                name: _map_setting(v[k], one_rate=[1.0, 1.5 if k == 1 else 2.5, 1.0]) for name, v in per_seed.items()
            }
        }
        for k in range(3)
    }
    found = {f.setting: f for f in seeds.combine(runs)}
    assert found["every"].one_rate_per_seed[2.0] == ["established", "no", "established"]
    assert found["every"].one_rate_over_seeds[2.0] == seeds.VARIES and found["every"].over_seeds[2.0] == seeds.EVERY
    body = seeds.page_body(list(found.values()), [0, 1, 2])
    assert "| every | 2 | E E E | in every seed | in no seed | E – E | varies with the seed | in no seed |" in body
    assert "| 2 | 2× | one rate per model | 0 | 4 | 0 |" in body


def test_the_map_over_seeds_trains_each_seed_once_and_takes_seed_0_from_the_maps_run(tmp_path, monkeypatch):
    import pathlib

    from reproduce import acceleration
    from reproduce import acceleration_seeds as seeds

    trained = []

    def fake_run(plan, where, job):  # what acceleration.run stores, with a speed-up per seed
        trained.append((plan.seed, plan.tag, pathlib.Path(where).name))
        body = {name: _map_setting([1.0, 2.0 + plan.seed, 1.0]) for name in plan.settings}
        config = json.loads(json.dumps(dataclasses.asdict(plan)))
        summary = {"command": f"acceleration --seed {plan.seed}", "config": config, "settings": body}
        (pathlib.Path(where) / f"{plan.name}.json").write_text(json.dumps(summary))
        return summary

    monkeypatch.setattr(acceleration, "run", fake_run)
    flags = ["--settings", "synthetic-2dec", "--steps", "100", "--out", str(tmp_path)]
    seeds.main(flags)
    assert trained == [(s, "deciding-1e5" if s == 0 else f"deciding-1e5-seed{s}", "seeds" if s else tmp_path.name)
                       for s in range(5)]  # fmt: skip
    assert (tmp_path / "acceleration-deciding-1e5.json").is_file()
    assert (tmp_path / "seeds" / "acceleration-deciding-1e5-seed4.json").is_file()
    page = (tmp_path / "acceleration-seeds-deciding-1e5.md").read_text()
    assert "| synthetic-2dec | 2 | n E E E E | varies with the seed |" in page  # 2.0 is within noise of 2
    trained.clear()
    seeds.main([*flags, "--resume"])
    assert trained == []  # every seed stored with the same settings
    seeds.main(flags)
    assert [s for s, _, _ in trained] == [1, 2, 3, 4]  # seed 0 is the map's own run, kept when it matches
    trained.clear()
    seeds.main([*flags[:3], "200", *flags[4:], "--resume"])
    assert [s for s, _, _ in trained] == [0, 1, 2, 3, 4]  # another budget: nothing matches
    with pytest.raises(SystemExit) as stopped:
        seeds.main([*flags, "--seeds", "0,1"])
    assert stopped.value.code == 2


def test_the_report_leaves_the_map_over_seeds_its_own_page(tmp_path):
    """`reproduce.report` writes a generic page for a map run, never over the page (and its
    tables) that reproduce.acceleration_seeds writes for itself."""
    from reproduce import report

    envelope = {"figure": "", "command": "c", "versions": {"python": "3", "tensorflow": "2", "keras": "3"},
                "machine": {"processor": "x", "cpu_count": 2}, "elapsed_seconds": 1.0, "config": {}}  # fmt: skip
    for name in ("acceleration-budget", "acceleration-seeds-deciding-1e5"):
        (tmp_path / f"{name}.json").write_text(json.dumps({**envelope, "figure": name}))
    assert list(report.pages(tmp_path)) == ["acceleration-budget"]


def test_a_run_of_one_panel_keeps_the_other_panels_entries(tmp_path):
    path = tmp_path / "figure5.json"
    left = {"claim": "l4: identity init, deeper is faster", "panel": "left", "verdict": "FAIL"}
    right = {"claim": "MNIST: converges faster", "panel": "right", "verdict": "PASS"}
    earlier = {"curves": {"linear model (l4)": {}}, "speedup": {"a vs b (l4)": {}}, "optimum": {"l4": 0.05}}
    path.write_text(json.dumps({**earlier, "claims": [left, right], "speedup_claims_on_grid": [{"claim": "x"}]}))
    # Figure 5's MNIST panel alone: no curves of its own, its own right-panel claims.
    new_right = {**right, "verdict": "FAIL"}
    summary = {"curves": {}, "optimum": {}, "claims": [new_right], "speedup_claims_on_grid": [], "mnist": {}}
    kept = common.kept_panels(path, summary, ["right"])
    assert kept["curves"] == earlier["curves"] and kept["speedup"] == earlier["speedup"]
    assert kept["claims"] == [new_right, left] and kept["speedup_claims_on_grid"] == [{"claim": "x"}]
    # Both panels run: nothing of the earlier run is kept.
    both = {"curves": {"c": {}}, "claims": [left, new_right]}
    assert common.kept_panels(path, dict(both), ["left", "right"])["claims"] == [left, new_right]


def test_written_json_keeps_every_value_and_puts_number_lists_on_one_line(tmp_path):
    from reproduce.study import outputs

    data = {"curve": [1, 2.5e-3, None, True, -1e20, float("inf")], "nested": [[1, 2], ["a", "b"]], "empty": []}
    text = outputs.write_json(tmp_path / "x.json", data).read_text()
    assert json.loads(text) == data
    assert '"curve": [1, 0.0025, null, true, -1e+20, Infinity]' in text and '"a",\n' in text
