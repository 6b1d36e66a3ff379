"""Theorem 2 on the library's own code: the end-to-end field of Eq. 12
(`tfovp.end_to_end.precondition_single_output`) has non-zero circulation around a closed
curve near the origin for depth N >= 3, so it is not the gradient of any function: no
regularizer reproduces what depth does (PAPER Sec. 3).

The loss is Ethanol's l_p loss L^1 (default l2, mean over examples, standardized data),
a single output. The curve Gamma_{r,R} (`reproduce.study.circulation`) lies in the plane of
e = grad L(0) / ||grad L(0)|| and f, the unit vector along H e orthogonalized against e
(H = X^T X / m, the direction in which the gradient turns first); R is a fraction of
||W*|| (near the origin), r^{3-2/N} = R^{3-2/N} / 2. N = 1 is the check of the method
(a gradient field: zero circulation up to quadrature error), N = 3, 4 the claim, N = 2
reported (the paper's footnote says it needs extra assumptions).

    python -m reproduce.theorem2 [--loss 4] [--radius-fraction 0.1] [--points 1000]
"""

import dataclasses
import pathlib
import time

import numpy as np

from reproduce import cli
from reproduce.study import circulation, criteria, outputs
from reproduce.study.claims import ClaimsFile
from reproduce.study.progress import job_scope
from reproduce.study.provenance import RunSummary
from tfovp.datasets import PRESETS, REGRESSION_LOADERS
from tfovp.optimum import lp_gradient
from tfovp.problem import Problem


@dataclasses.dataclass
class Config:
    dataset: str = cli.setting("ethanol", "regression data (the paper's is ethanol)", tuple(REGRESSION_LOADERS))
    preprocessing: str = cli.setting("standardize", "feature/target scaling", tuple(PRESETS))
    loss: float = cli.setting(2.0, "p of the l_p loss L^1 (> 1)")
    depths: tuple[int, ...] = cli.setting((1, 2, 3, 4), "depths N of the field (>= 1)")
    radius_fraction: float = cli.setting(0.1, "R as a fraction of ||W*|| (> 0): how close to the origin")
    points: int = cli.setting(1000, "trapezoid points per piece of the curve (>= 10), doubled twice")
    data_dir: str | None = cli.setting(None, "folder with the datasets, searched before $TFOVP_DATA_DIR")
    quick: bool = cli.setting(False, "smoke run in seconds: {preset} (flags given win)")

    QUICK = {"points": 100}

    def validate(self):
        cli.check(self.loss > 1, f"--loss {self.loss:g}: expected a number > 1")
        cli.check_values("depths", self.depths, lambda n: n >= 1, "integers >= 1")
        cli.check(self.radius_fraction > 0, f"--radius-fraction {self.radius_fraction:g}: expected a number > 0")
        cli.check(self.points >= 10, f"--points {self.points}: expected an integer >= 10")
        cli.check(
            self.data_dir is None or pathlib.Path(self.data_dir).is_dir(), f"--data-dir {self.data_dir}: no such folder"
        )


def plane(problem, p):
    """(grad L at points, e, f) of the problem: the batched gradient of the l_p loss of a
    single-row kernel, and the plane of the curve."""
    x, y = problem.x, problem.y[:, :1]
    scale = 1 / len(x) if problem.reduction == "mean" else 1.0

    def gradient(points):  # (n, d) row kernels W -> (n, d) grad L^1(W)
        return lp_gradient(x, y, points.T, p, problem.reduction).T

    g0 = gradient(np.zeros((1, x.shape[1])))[0]
    e = g0 / np.linalg.norm(g0)
    turn = x.T @ (x @ e) * scale
    f = turn - (turn @ e) * e
    return gradient, e, f / np.linalg.norm(f)


def _figure(gradient, e, f, measured, out):
    """The curve and the field of N = 1 and N = 3 in the curve's plane."""
    from matplotlib.figure import Figure

    from reproduce.study.plotting import save

    outer = next(iter(measured.values())).outer
    figure = Figure(figsize=(11, 3.8))
    for axis, depth in zip(figure.subplots(1, 2), (1, 3)):
        inner = circulation.inner_radius(outer, depth)
        for piece in circulation.pieces(e, f, inner, outer, 200):
            axis.plot(piece @ e, piece @ f, color="black", lw=1.2)
        grid = np.linspace(-1.1 * outer, 1.1 * outer, 15)
        a, b = np.meshgrid(grid, np.abs(grid) / 1.1)
        points = a.reshape(-1, 1) * e + b.reshape(-1, 1) * f
        values = circulation.end_to_end_field(gradient, depth)(points)
        axis.quiver(a, b, (values @ e).reshape(a.shape), (values @ f).reshape(a.shape), color="tab:blue", alpha=0.7)
        axis.set_aspect("equal")
        axis.set_xlabel("coordinate along e = grad L(0) / ||grad L(0)||")
        axis.set_ylabel("coordinate along f")
        value = measured[depth].value if depth in measured else float("nan")
        axis.set_title(f"N = {depth}: r = {inner:.3g}, R = {outer:.3g}, circulation {value:.3g}", fontsize=10)
    figure.suptitle("Theorem 2: the curve Gamma_(r,R) and the end-to-end field F (Eq. 12) in its plane", fontsize=11)
    figure.tight_layout()
    save(figure, out / "theorem2")


def run(config, workdir, job=None):
    with job_scope(job, "theorem2") as job:
        started, out = time.time(), pathlib.Path(workdir)
        claims_file = ClaimsFile(out)
        claims_file.read()
        problem = Problem.load(config.dataset, config.preprocessing, "mean", config.data_dir)
        gradient, e, f = plane(problem, config.loss)
        outer = config.radius_fraction * float(np.linalg.norm(problem.optimal_kernel(config.loss)))
        measured = {}
        job.plan("theorem2", len(config.depths), len(config.depths))
        for depth in config.depths:
            task = job.start(
                f"N = {depth}: circulation with {config.points:,}, {2 * config.points:,} and "
                f"{4 * config.points:,} points per piece",
                1,
                1.0,
            )
            measured[depth] = circulation.measure(gradient, e, f, outer, depth, config.points)
            task.done(f"N = {depth}")
            job.write(
                f"    N = {depth}: circulation {measured[depth].value:.4g}, quadrature error "
                f"{measured[depth].error:.2g}"
            )
        setting = (
            f"{config.dataset}, {config.preprocessing}, l{config.loss:g} mean, R = {config.radius_fraction:g} "
            f"||W*||, {4 * config.points:,} points per piece"
        )
        claims = criteria.theorem2(measured, setting)
        claims_file.replace("theorem2", claims, job.command)
        import pandas as pd

        rows = [
            {"depth": c.depth, "inner_radius": c.inner, "outer_radius": c.outer, "points": n, "circulation": v}
            for c in measured.values()
            for n, v in zip(c.points, c.values)
        ]
        outputs.write_csv(out / "theorem2.csv", pd.DataFrame(rows), float_format="%.10g")
        _figure(gradient, e, f, measured, out)
        summary = RunSummary.now("theorem2", job.command, config, started).to_json(
            circulations={str(c.depth): {**dataclasses.asdict(c), "error": c.error} for c in measured.values()},
            claims=[dataclasses.asdict(c) for c in claims],
        )
        outputs.write_json(out / "theorem2.json", summary)
        return summary


def main(argv=None):
    return cli.main(run, Config, __doc__, argv, prog="python -m reproduce.theorem2")


if __name__ == "__main__":
    main()
