"""`tfovp.compare_depths` and `python -m tfovp.compare`: times to each level against the
closed form of GD on a diagonal problem, the report, and the command line's errors."""

import math

import numpy as np
import pandas as pd
import pytest

from tfovp import speedup
from tfovp.compare import compare_depths, main


def test_linear_model_times_match_the_closed_form():
    # x = I (m = d = 4), l2 mean loss: GD on w from 0 gives w(t) = y (1 - (1 - eta/m)^t),
    # so the relative excess is exactly (1 - eta/m)^(2t) and the time to a level e is the
    # first t with (1 - eta/m)^(2t) <= e.
    y = np.array([1.0, -2.0, 0.5, 3.0])
    eta, m = 0.5, 4
    result = compare_depths(
        np.eye(4), y, depths=(1, 2), loss=2, steps=400, learning_rates=[eta], dtype="float64", tune=False
    )
    assert result.optimum == pytest.approx(0.0, abs=1e-15) and result.reference_loss == pytest.approx(np.sum(y**2) / 8)
    times = result.times(1)
    for level, time in zip(result.levels, times):
        expected = math.ceil(math.log(level) / (2 * math.log(1 - eta / m)))
        if expected <= 400 and abs(math.log(level) / (2 * math.log(1 - eta / m)) - round(expected)) > 1e-6:
            assert time == expected, level
    # Speed-ups are T_1 / T_2 where both get there, bounds where one does.
    for s, t1, t2 in zip(result.speedups(2), times, result.times(2)):
        if math.isfinite(t1) and math.isfinite(t2):
            assert s.kind == speedup.EXACT and s.value == pytest.approx(max(t1, 1) / max(t2, 1))
    assert len(result.rows()) == 2 * len(result.levels)


def test_report_text_and_figure(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 5))
    y = x @ rng.normal(size=5) + 0.1 * rng.normal(size=64)
    result = compare_depths(x, y, depths=(1, 3), loss=4, steps=300, learning_rates=[1e-3, 1e-2, 10.0])
    text = result.summary()
    assert "depth | tuned lr at e (grid's) | divergence edge | diverged lrs" in text and "speed-up over depth 1" in text
    assert "S(e) = T_1(e) / T_N(e)" in text and "Answer:" in text and "depth 3 " in text.split("Answer:")[1]
    assert 10.0 in result.diverged_rates(3) and result.tuned
    figure = result.plot(tmp_path / "depths.png")
    assert (tmp_path / "depths.png").stat().st_size > 10_000 and len(figure.axes) == 2


def test_one_rate_per_depth_is_the_default_and_reads_every_level_off_one_run():
    """x = I, l2 mean loss: the linear model's relative excess at rate eta is exactly
    (1 - eta/m)^(2t), so at the one rate the protocol chose, T(e) is the first t with
    (1 - eta/m)^(2t) <= e at every level; the per-level oracle is never slower than one
    rate and agrees with it at the level the rate was chosen at."""
    y = np.array([1.0, -2.0, 0.5, 3.0])
    m = 4
    result = compare_depths(np.eye(4), y, depths=(1, 2), loss=2, steps=400, learning_rates=[0.05, 0.1], dtype="float64")
    oracle = compare_depths(
        np.eye(4), y, depths=(1, 2), loss=2, steps=400, learning_rates=[0.05, 0.1], dtype="float64",
        tune_per_level=True,
    )  # fmt: skip
    assert result.protocol == "one rate" and oracle.protocol == "per level"
    eta = result.chosen_rate(1).learning_rate
    assert 0 < eta < 2 * m  # inside the stable range: the closed form holds
    checked = 0
    for level, time in zip(result.levels, result.times(1)):
        exact = math.log(level) / (2 * math.log(abs(1 - eta / m)))
        if exact <= 400 and abs(exact - round(exact)) > 1e-6:
            assert time == max(math.ceil(exact), 0), level
            checked += 1
    assert checked >= 3
    target = result.target_level
    for depth in (1, 2):
        one, best = result.times(depth), oracle.times(depth)
        assert np.all(best <= one) and best[target] == one[target]
        lr = result.chosen_rate(depth).learning_rate
        np.testing.assert_array_equal(one, speedup.family_times(result.families[depth].at_rate(lr)))
        assert {row["learning_rate"] for row in result.rows() if row["depth"] == depth} == {lr}
    assert "One rate per depth, chosen at e = " in result.summary()
    assert "Per-level protocol" in oracle.summary()
    with pytest.raises(ValueError, match="tune_per_level=True.*needs `tune=True`"):
        compare_depths(np.eye(4), y, depths=(1, 2), loss=2, steps=10, tune=False, tune_per_level=True)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"depths": (1, 1)}, "distinct"),
        ({"depths": (0, 2)}, "depths=0"),
        ({"loss": 0.5}, "loss=0.5"),
        ({"steps": 0}, "steps=0"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        compare_depths(np.ones((4, 2)), np.arange(4.0), **kwargs)


def test_bad_data():
    with pytest.raises(ValueError, match="one row per row"):
        compare_depths(np.ones((4, 2)), np.ones(3))
    with pytest.raises(ValueError, match="`x` contains NaN"):
        compare_depths(np.array([[1.0, np.nan], [0.0, 1.0]]), np.ones(2))


def _table(tmp_path, **columns):
    path = tmp_path / "data.csv"
    pd.DataFrame(columns).to_csv(path, index=False)
    return str(path)


def test_command_line_writes_the_report_plot_and_table(tmp_path, capsys):
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=50), rng.normal(size=50)
    path = _table(tmp_path, a=a, b=b, name=["x"] * 50, target=2 * a - b)
    flags = ["--target", "target", "--features", "a,b", "--steps", "200", "--lrs", "0.001,0.01", "--depths", "1,2"]
    main([path, *flags, "--plot", str(tmp_path / "c.png"), "--csv", str(tmp_path / "c.csv")])
    out = capsys.readouterr().out
    assert "50 rows, 2 features, target target" in out and "speed-up over depth 1" in out
    table = pd.read_csv(tmp_path / "c.csv")
    assert set(table["depth"]) == {1, 2} and (tmp_path / "c.png").is_file()
    assert set(table["protocol"]) == {"one rate"} and table.groupby("depth")["learning_rate"].nunique().max() == 1
    main([path, *flags, "--tune-per-level", "--csv", str(tmp_path / "p.csv")])
    assert set(pd.read_csv(tmp_path / "p.csv")["protocol"]) == {"per level"}


@pytest.mark.parametrize(
    "columns, flags, message",
    [
        ({"a": [1.0, 2.0, 3.0], "y": [1.0, 2.0, 3.0]}, ["--target", "z"], "no column z in .*; columns: a, y"),
        ({"a": ["u", "v", "w"], "y": [1.0, 2.0, 3.0]}, ["--target", "y"], "non-numeric column a"),
        ({"a": [1.0, None, 3.0], "y": [1.0, 2.0, 3.0]}, ["--target", "y"], r"missing values in a \(1\)"),
        ({"a": [1.0, 2.0, 3.0], "y": [1.0, 2.0, 3.0]}, [], "--target: required"),
        ({"a": [1.0, 2.0, 3.0], "y": [1.0, 2.0, 3.0]}, ["--target", "y", "--plot", "x.jpg"], "--plot x.jpg"),
        (
            {"a": [1.0, 2.0, 3.0], "y": [1.0, 2.0, 3.0]},
            ["--target", "y", "--no-tune", "--tune-per-level"],
            "drop --no-tune",
        ),
    ],
)
def test_command_line_errors_are_one_line(tmp_path, capsys, columns, flags, message):
    with pytest.raises(SystemExit) as exit_info:
        main([_table(tmp_path, **columns), *flags])
    error = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and len(error.splitlines()) == 1
    assert pytest.importorskip("re").search(message, error), error


def test_command_line_missing_file(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main([str(tmp_path / "nope.csv"), "--target", "y"])
    assert "nope.csv: no such file" in capsys.readouterr().err


def test_command_line_reads_parquet(tmp_path, capsys):
    pytest.importorskip("pyarrow")
    rng = np.random.default_rng(2)
    a = rng.normal(size=40)
    pd.DataFrame({"a": a, "y": 3 * a}).to_parquet(tmp_path / "d.parquet")
    result = main([str(tmp_path / "d.parquet"), "--target", "y", "--steps", "50", "--lrs", "0.01", "--depths", "1,2"])
    assert result.depths == (1, 2) and "40 rows, 1 feature, target y" in capsys.readouterr().out


def test_the_held_out_rows_never_reach_training_and_are_scored():
    """The split is seeded, the preprocessing's statistics come from the training rows
    only, and the held-out loss is the trained kernel's loss on the held-out rows."""
    from tfovp.compare import split
    from tfovp.optimum import lp_objective

    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 2))
    y = x @ np.array([1.0, -1.0]) + 0.1 * rng.normal(size=50)
    x[0] = 1e6  # one far-out row: it must not shift what the training rows see
    (x_train, _), (x_test, y_test) = split(x, y, 0.2, seed=3, preprocessing="standardize")
    order = np.random.default_rng(3).permutation(50)
    assert len(x_test) == 10 and np.allclose(x_train.mean(axis=0), 0) and np.allclose(x_train.std(axis=0), 1)
    if 0 in order[:10]:  # held out: the training statistics ignore it, so it stays far out
        assert np.abs(x_test).max() > 1e3
    (a, b), _ = split(x, y, 0.2, seed=3, preprocessing="standardize")
    np.testing.assert_array_equal(a, x_train)  # the same draw for the same seed
    target = np.sin(x_test[:, :1])  # not linear: the held-out loss is far from 0
    result = compare_depths(
        x_train, np.sin(a[:, 0]), depths=(1,), loss=2, steps=300, learning_rates=[0.5], tune=False,
        held_out=(x_test, target), dtype="float64",
    )  # fmt: skip
    train, test, rate = result.final_losses(1)
    kernel = result.families[1].final_kernels[0]
    assert rate == 0.5 and test == pytest.approx(lp_objective(x_test, target, kernel, 2), rel=1e-12) and test > 0.01
    assert "training / held-out" in result.summary()


def test_a_bias_on_every_layer_fits_least_squares_with_an_intercept():
    from tfovp.optimum import optimal_loss
    from tfovp.sweep import sweep

    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 3))
    y = x @ np.array([0.5, -1.0, 2.0]) + 4.0 + 0.1 * rng.normal(size=40)
    best, solution = optimal_loss(np.hstack([x, np.ones((40, 1))]), y, 2)
    for depth in (1, 2):
        result = sweep(x, y, [0.1], 3000, depth=depth, hidden_widths=3, loss=2, dtype="float64", bias=True,
                       record_steps=[0, 3000])  # fmt: skip
        assert result.losses[-1, 0] == pytest.approx(best, rel=1e-9)
        np.testing.assert_allclose(result.final_end_to_end()[0], solution, atol=1e-6)  # [W; b], b the intercept
    with pytest.raises(ValueError, match="the end-to-end rule .* has no bias"):
        sweep(x, y, [0.1], 10, update="end_to_end", bias=True)
