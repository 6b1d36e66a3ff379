"""The reproduction scripts: quick end-to-end runs, claim criteria, resume, TensorBoard."""

import json

import numpy as np
import pandas as pd
import pytest

from reproduce import common, figure2, figure3, figure4, figure5, sensitivity
from tfovp import claims, convergence, experiment

CSV_COLUMNS = {"figure", "curve", "depth", "hidden_widths", "update", "initializer", "loss_p", "learning_rate",
               "seed", "selected", "step", "loss", "excess_loss", "relative_excess", "dataset",
               "preprocessing", "loss_reduction", "budget", "dtype"}
JSON_KEYS = {"figure", "config", "versions", "machine", "elapsed_seconds", "optimum", "curves", "claims"}
TINY = ["--quick", "--steps", "60"]


def _run(module, out, data_dir, *extra):
    return module.main([*TINY, "--out", str(out), "--data-dir", data_dir, *extra])


def _check_outputs(out, figure, n_claims):
    for suffix in ("csv", "json", "png", "pdf"):
        assert (out / f"{figure}.{suffix}").is_file()
    frame = pd.read_csv(out / f"{figure}.csv")
    assert CSV_COLUMNS <= set(frame.columns) and len(frame) > 0
    assert frame["loss"].notna().all()  # diverged steps are never written as NaN
    summary = json.loads((out / f"{figure}.json").read_text())
    assert JSON_KEYS <= set(summary)
    for curve in summary["curves"].values():
        assert {"best_learning_rate", "diverged_rates", "iterations_to_levels", "at_edge"} <= set(curve)
    rows = [r for r in json.loads((out / "claims.json").read_text()) if r["figure"] == figure]
    assert len(rows) == n_claims and all(r["verdict"] in ("PASS", "FAIL", "INCONCLUSIVE") for r in rows)
    assert f"| {figure} |" in (out / "claims.md").read_text()
    return frame, summary


@pytest.mark.parametrize("module, figure, extra, n_claims", [
    (figure3, "figure3", [], 2),
    (figure2, "figure2", ["--widths", "1,10", "--losses", "4"], 4),
    (figure4, "figure4", [], 2),
    (figure5, "figure5", [], 4),
])
def test_quick_run_writes_every_output(module, figure, extra, n_claims, data_dir, tmp_path):
    _run(module, tmp_path, data_dir, *extra)
    frame, summary = _check_outputs(tmp_path, figure, n_claims)
    assert summary["config"]["steps"] == 60 and set(frame["budget"]) == {60}
    if module is figure2:
        distance = pd.read_csv(tmp_path / "figure2_distance.csv")
        assert set(distance["width"]) == {1, 10} and (tmp_path / "figure2_distance.png").is_file()


def test_figure5_right_panel_and_appendix_c_on_self_test_data(data_dir, tmp_path, monkeypatch):
    from mnist_tutorial import convolutional as tutorial
    from reproduce import appendix_c

    _run(figure5, tmp_path, data_dir, "--panels", "left,right", "--mnist-self-test")
    rows = [r for r in json.loads((tmp_path / "claims.json").read_text()) if r["claim"].startswith("MNIST")]
    assert len(rows) == 2 and "original: 0.00%, overparameterized: 0.00%" in rows[1]["measured"]
    history = pd.read_csv(tmp_path / "figure5_mnist_overparameterized.csv")
    assert list(history["step"]) == [0, 1, 2, 3]  # 256 fake images, one epoch of batch 64
    summary = json.loads((tmp_path / "figure5.json").read_text())
    assert summary["mnist"]["overparameterized"]["parameters"] == 1_925_614
    appendix_c.main(["--self-test", "--steps", "4", "--lrs", "0.01,0.5", "--stds", "0.1", "--out", str(tmp_path)])
    table = pd.read_csv(tmp_path / "appendix_c.csv")
    assert len(table) == 5 and (tmp_path / "appendix_c.png").is_file()
    diverged = table[table["base_lr"] == 0.5]  # both models: one overflows, one explodes past 1000x its start
    assert len(diverged) == 2 and diverged["diverged_at"].notna().all() and np.isinf(diverged["last_tenth_loss"]).all()
    best = json.loads((tmp_path / "appendix_c.json").read_text())["best"]
    assert best["overparameterized"]["base_lr"] == 0.01
    monkeypatch.setattr(tutorial, "train", lambda run: pytest.fail("--resume retrained a finished run"))
    appendix_c.main(["--self-test", "--steps", "4", "--lrs", "0.01,0.5", "--stds", "0.1", "--out", str(tmp_path),
                     "--resume"])
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "appendix_c.csv").drop(columns="seconds"),
                                  table.drop(columns="seconds"))
    from reproduce import report

    text = report.build(tmp_path)
    assert "| overparameterized | 1,925,614 | 4 | 0.00 % |" in text
    assert "### appendix_c" in text and "| overparameterized | 0.5 | 0.1 | inf |" in text


def test_mnist_panel_resume_keeps_the_finished_model(data_dir, tmp_path, monkeypatch):
    from mnist_tutorial import convolutional as tutorial

    real, trained = tutorial.train, []

    def interrupted(run):
        if run.overparameterize:
            raise KeyboardInterrupt
        trained.append(run.overparameterize)
        return real(run)

    monkeypatch.setattr(tutorial, "train", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _run(figure5, tmp_path, data_dir, "--panels", "right", "--mnist-self-test")
    assert trained == [False]

    def counted(run):
        trained.append(run.overparameterize)
        return real(run)

    monkeypatch.setattr(tutorial, "train", counted)
    _run(figure5, tmp_path, data_dir, "--panels", "right", "--mnist-self-test", "--resume")
    assert trained == [False, True]  # the original model was not trained again
    summary = json.loads((tmp_path / "figure5.json").read_text())
    assert summary["mnist"]["original"]["parameters"] == 1_663_370


def test_resume_after_interruption_gives_identical_outputs(data_dir, tmp_path, monkeypatch):
    _run(figure3, tmp_path / "whole", data_dir)
    real = experiment.run_curve
    calls = []

    def interrupted(*args, **kwargs):
        if kwargs.get("extend_edges", True):  # a curve (not its extended-grid rerun)
            if len(calls) == 3:
                raise KeyboardInterrupt
            calls.append(args[0].label)
        return real(*args, **kwargs)

    monkeypatch.setattr(experiment, "run_curve", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _run(figure3, tmp_path / "cut", data_dir)
    finished = list((tmp_path / "cut" / ".curves").rglob("*.json"))
    assert len(finished) == 3 and not (tmp_path / "cut" / "figure3.csv").exists()
    calls.clear()
    monkeypatch.setattr(experiment, "run_curve", lambda *a, **k: (
        k.get("extend_edges", True) and calls.append(a[0].label)) or real(*a, **k))
    _run(figure3, tmp_path / "cut", data_dir, "--resume")
    assert len(calls) == 3  # only the three unfinished curves ran again
    whole = pd.read_csv(tmp_path / "whole" / "figure3.csv")
    resumed = pd.read_csv(tmp_path / "cut" / "figure3.csv")
    pd.testing.assert_frame_equal(whole, resumed)


def test_tensorboard_event_files(data_dir, tmp_path):
    import tensorflow as tf

    _run(figure3, tmp_path, data_dir, "--losses", "4", "--tensorboard", str(tmp_path / "tb"))
    frame = pd.read_csv(tmp_path / "figure3.csv")
    files = list((tmp_path / "tb").rglob("events.out.tfevents.*"))
    assert len(files) == 3
    depth2 = [f for f in files if "depth-2" in str(f)][0]
    values = {}
    for event in tf.compat.v1.train.summary_iterator(str(depth2)):
        for value in event.summary.value:
            values.setdefault(value.tag, {})[event.step] = float(tf.make_ndarray(value.tensor)) \
                if value.tag != "config" else None
    assert {"loss", "excess_loss", "learning_rate", "end_to_end_norm", "balancedness"} <= set(values)
    selected = frame[(frame["curve"] == "depth-2 net") & frame["selected"]]
    np.testing.assert_allclose(values["loss"][60], selected[selected["step"] == 60]["loss"].item(), rtol=1e-6)
    assert values["learning_rate"][0] == pytest.approx(selected["learning_rate"].iloc[0])


@pytest.mark.parametrize("flags, message", [
    (["--dataset", "iris"], "--dataset must be one of"),
    (["--loss", "0.5"], "p >= 1. Received: 0.5"),
    (["--lrs", ""], "--lrs must be a non-empty list"),
    (["--lrs", "0.1,-1"], "--lrs must be a non-empty list"),
    (["--preprocessing", "zscore"], "--preprocessing must be one of"),
])
def test_bad_flags_give_clear_errors(flags, message, capsys):
    with pytest.raises(SystemExit):
        figure3.main(["--quick", *flags])
    assert message in capsys.readouterr().err


# --------------------------------------------------------------- claim criteria on known curves


def test_figure3_claims_pass_fail_inconclusive():
    paper_like = {(1, 2.0): (100, 0.1), (2, 2.0): (120, 0.1), (3, 2.0): (150, 0.1),
                  (1, 4.0): (1000, 0.1), (2, 4.0): (400, 0.1), (3, 4.0): (300, 0.1)}
    assert [c.verdict for c in figure3.claims(paper_like)] == ["PASS", "PASS"]
    opposite = {**paper_like, (2, 2.0): (50, 0.1), (2, 4.0): (900, 0.1)}
    assert [c.verdict for c in figure3.claims(opposite)] == ["FAIL", "FAIL"]
    nobody = {k: (None, 0.5) for k in paper_like}
    assert [c.verdict for c in figure3.claims(nobody)] == ["INCONCLUSIVE", "INCONCLUSIVE"]
    only_deep = {**nobody, (2, 4.0): (10, 0.0), (3, 4.0): (20, 0.0)}
    assert figure3.claims(only_deep)[1].verdict == "PASS"


def _summary(relative_excess, rates=(1e-3,), diverged=None):
    """A convergence summary of hand-made relative-excess curves (optimum 0, L0 = 1)."""
    curves = np.asarray(relative_excess, dtype=float).reshape(len(relative_excess), -1)
    steps = np.array([0, 5] + list(range(100, 100 * (curves.shape[0] - 1), 100)))
    diverged = np.zeros(curves.shape[1], bool) if diverged is None else np.asarray(diverged)
    return convergence.summarize_rates(steps, curves, 0.0, list(rates), diverged, 0.2)


def test_figure5_claims_on_known_curves():
    config = figure5.Config(steps=1000)
    flat = _summary([1.0] * 11)
    late = _summary([1.0] * 8 + [0.5, 0.1, 0.05])
    fast = _summary([1.0, 0.1] + [0.01] * 9)
    faster = _summary([1.0, 0.05] + [0.001] * 9)
    paper = {"linear model (depth 1)": late, "depth-4 net, near-zero init": late,
             "depth-8 net, near-zero init": flat, "depth-4 net, identity init": fast,
             "depth-8 net, identity init": faster}
    assert [c.verdict for c in figure5.claims_for(paper, config, 4.0, "")] == ["PASS"] * 4
    contrary = {**paper, "depth-8 net, near-zero init": fast, "depth-4 net, near-zero init": fast,
                "depth-8 net, identity init": late}
    assert [c.verdict for c in figure5.claims_for(contrary, config, 4.0, "")] == ["FAIL"] * 4


def test_claims_file_keeps_other_figures(tmp_path):
    row = claims.Claim("figure3", "c", "k", "m", claims.PASS)
    claims.write(tmp_path, "figure3", [row])
    claims.write(tmp_path, "figure5", [claims.Claim("figure5", "d", "k", "m", claims.FAIL)])
    claims.write(tmp_path, "figure3", [claims.Claim("figure3", "c2", "k", "m", claims.INCONCLUSIVE)])
    rows = json.loads((tmp_path / "claims.json").read_text())
    assert [(r["figure"], r["claim"]) for r in rows] == [("figure3", "c2"), ("figure5", "d")]


def test_sensitivity_quick(data_dir, tmp_path):
    sensitivity.main(["--quick", "--steps", "40", "--figure5-steps", "40", "--figures", "3,5",
                      "--preprocessings", "standardize,maxabs", "--seeds", "0,1", "--out", str(tmp_path),
                      "--data-dir", data_dir])
    frame = pd.read_csv(tmp_path / "sensitivity.csv")
    # 3 levels x 2 preprocessings x 2 seeds x 2 budgets x (2 Figure 3 claims + 4 Figure 5 claims)
    assert len(frame) == 3 * 2 * 2 * 2 * 6
    assert set(frame["budget"]) == {40, 200} and set(frame["level"]) == {0.2, 0.1, 0.05}
    assert "| claim | level | PASS | FAIL | INCONCLUSIVE | settings |" in (tmp_path / "sensitivity.md").read_text()
    # Judging at other levels later reuses the stored curves (no training) and replaces the rows.
    sensitivity.main(["--quick", "--steps", "40", "--figure5-steps", "40", "--figures", "3",
                      "--preprocessings", "standardize,maxabs", "--seeds", "0,1", "--out", str(tmp_path),
                      "--data-dir", data_dir, "--extra-levels", "0.5", "--resume"])
    again = pd.read_csv(tmp_path / "sensitivity.csv")
    assert set(again[again["figure"] == "figure3"]["level"]) == {0.2, 0.5}
    assert set(again[again["figure"] == "figure5"]["level"]) == {0.2, 0.1, 0.05}
    # A longer budget for one preprocessing and seed adds its rows and keeps all others.
    sensitivity.main(["--quick", "--steps", "40", "--figure5-steps", "40", "--figures", "5",
                      "--preprocessings", "maxabs", "--seeds", "1", "--budget-factors", "2", "--out", str(tmp_path),
                      "--data-dir", data_dir])
    longer = pd.read_csv(tmp_path / "sensitivity.csv")
    assert len(longer) == len(again) + 3 * 4
    assert set(longer[longer["figure"] == "figure5"]["budget"]) == {40, 80, 200}
    pd.testing.assert_frame_equal(longer.iloc[: len(again)].drop(columns="started"), again.drop(columns="started"))


def test_settings_key_ignores_bookkeeping_flags():
    a = figure3.Config(resume=True, tensorboard="x")
    assert common.settings_key(a) == common.settings_key(figure3.Config())
    assert common.settings_key(figure3.Config(steps=5)) != common.settings_key(figure3.Config())


@pytest.mark.slow  # every figure's quick run again (~1 minute); each figure has its own quick test
def test_all_quick_writes_every_figure_without_the_mnist_panel(data_dir, tmp_path):
    from reproduce import all as all_figures

    results = all_figures.main(["--quick", "--steps", "40", "--out", str(tmp_path), "--data-dir", data_dir])
    assert set(results) == {"reproduce.figure3", "reproduce.figure2", "reproduce.figure4", "reproduce.figure5",
                            "figure3-abalone"}
    for figure in ("figure2", "figure3", "figure4", "figure5", "figure3-abalone"):
        assert (tmp_path / f"{figure}.png").is_file()
    summary = json.loads((tmp_path / "figure5.json").read_text())
    assert "mnist" not in summary and summary["config"]["steps"] == 40
