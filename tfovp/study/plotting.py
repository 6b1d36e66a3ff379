"""Figures of loss curves: one column per panel. A `LossPanel` shows the excess loss
L - L* (log) above the raw loss (log); a `MinibatchPanel` (stochastic training) the raw
and smoothed minibatch loss above the validation error. Diverged or empty curves are
never drawn (a panel lists them in its notes instead).

Figures are drawn on `matplotlib.figure.Figure` objects, never through pyplot, so
importing or using this module does not touch the global matplotlib backend of a
notebook or application; files are written atomically.
"""

import dataclasses

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullFormatter

from tfovp._files import atomic_writer
from tfovp.study.criteria import smooth


@dataclasses.dataclass(frozen=True)
class Curve:
    label: str
    steps: np.ndarray
    losses: np.ndarray  # NaN where not recorded or diverged


@dataclasses.dataclass
class LossPanel:
    title: str
    optimum: float
    curves: list  # of Curve
    notes: list = dataclasses.field(default_factory=list)  # e.g. which curves diverged


@dataclasses.dataclass(frozen=True)
class MinibatchCurve:
    label: str
    steps: np.ndarray
    losses: np.ndarray
    errors: np.ndarray  # validation error (%), NaN where not evaluated


@dataclasses.dataclass
class MinibatchPanel:
    title: str
    window: int  # steps of the moving average
    curves: list  # of MinibatchCurve


def _minibatch_panel(top, bottom, panel):
    for curve in panel.curves:
        (line,) = top.plot(curve.steps, curve.losses, lw=0.5, alpha=0.3)
        top.plot(
            curve.steps,
            smooth(curve.losses, panel.window),
            color=line.get_color(),
            lw=1.6,
            label=f"{curve.label.split(' (')[0]} (mean of {panel.window} steps)",
        )  # details: bottom legend
        errors = np.asarray(curve.errors, dtype=float)
        keep = np.isfinite(errors)
        bottom.plot(
            np.asarray(curve.steps)[keep], errors[keep], color=line.get_color(), lw=1.4, marker=".", label=curve.label
        )
    top.set_title(panel.title, fontsize=10)
    top.set_ylabel("minibatch loss (with L2 term)")
    bottom.set_ylabel("validation error (%)")
    errors = [e for c in panel.curves for e in np.asarray(c.errors, dtype=float) if np.isfinite(e)]
    positive = all(e > 0 for e in errors)
    for ax in (top, bottom):
        ax.set_yscale("log" if ax is top or positive else "linear")
        ax.set_xlabel("iteration")
        ax.grid(alpha=0.3, which="both", lw=0.5)
        ax.legend(fontsize=7)


def _loss_panel(top, bottom, panel, log_x):
    for curve in panel.curves:
        losses = np.asarray(curve.losses, dtype=float)
        keep = np.isfinite(losses)
        if not keep.any():
            continue
        excess = losses[keep] - panel.optimum
        positive = excess > 0
        steps = np.asarray(curve.steps)[keep]
        (line,) = top.plot(steps[positive], excess[positive], label=curve.label, lw=1.4)
        bottom.plot(steps, losses[keep], color=line.get_color(), lw=1.4)
    top.set_title(panel.title, fontsize=10)
    top.set_ylabel("excess loss  L - L*")
    bottom.set_ylabel("training loss  L")
    bottom.axhline(panel.optimum, color="black", ls=":", lw=1, label="L* (optimum)")
    for ax in (top, bottom):
        ax.set_yscale("log")
        if log_x:
            ax.set_xscale("symlog", linthresh=10)
        ax.set_xlabel("iteration")
        ax.grid(alpha=0.3, which="both", lw=0.5)
    top.legend(fontsize=7, title="\n".join(panel.notes) or None, title_fontsize=6)
    bottom.legend(fontsize=7, loc="upper right")


def save(figure, path_stem, formats=("png", "pdf"), dpi=130):
    """Write `figure` to `path_stem`.<format> atomically; returns the paths."""
    paths = [f"{path_stem}.{suffix}" for suffix in formats]
    for path in paths:
        with atomic_writer(path, "wb") as handle:
            figure.savefig(handle, format=path.rsplit(".", 1)[1], dpi=dpi)
    return paths


def plot_panels(panels, path_stem, title=None, log_x=False):
    """Draw `panels` (LossPanel / MinibatchPanel) side by side; write `path_stem`.png and
    .pdf; returns the paths."""
    columns = len(panels)
    figure = Figure(figsize=(5.2 * columns, 7.5))
    axes = figure.subplots(2, columns, squeeze=False)
    for col, panel in enumerate(panels):
        if isinstance(panel, MinibatchPanel):
            _minibatch_panel(axes[0, col], axes[1, col], panel)
        else:
            _loss_panel(axes[0, col], axes[1, col], panel, log_x)
    if title:
        figure.suptitle(title, fontsize=11)
    figure.tight_layout()
    return save(figure, path_stem)


def plot_speedups(comparisons, path_stem, title):
    """S(e) against the level e (log-log, tighter levels to the right), one line per
    comparison; lower bounds as upward and upper bounds as downward triangles; the
    lines S = 1, 2 and 10 for reference. `comparisons` maps a legend label to a
    `criteria.Comparison`. Writes `path_stem`.png and .pdf."""
    figure = Figure(figsize=(10, 5))
    axis = figure.subplots()
    markers = {"lower bound": "^", "upper bound": "v"}
    for label, c in comparisons.items():
        exact = [(s.level, s.value) for s in c.speedups if s.kind == "exact"]
        xs, ys = zip(*exact) if exact else ((), ())
        (line,) = axis.plot(xs, ys, marker="o", ms=3, lw=1.4, label=label)
        for kind, marker in markers.items():
            bounds = [(s.level, s.value) for s in c.speedups if s.kind == kind]
            if bounds:
                axis.plot(*zip(*bounds), ls="none", marker=marker, ms=6, color=line.get_color())
    for value, style in ((1, "-"), (2, "--"), (10, ":")):
        axis.axhline(value, color="gray", lw=0.8, ls=style)
    levels = [s.level for c in comparisons.values() for s in c.speedups]
    values = [s.value for c in comparisons.values() for s in c.speedups if s.value]
    axis.set_xscale("log")
    axis.set_yscale("log")
    if levels:  # also when nothing was reached: the axes still show the levels measured
        axis.set_xlim(max(levels) * 1.3, min(levels) / 1.3)  # tighter levels to the right
    if not values:
        axis.set_ylim(0.1, 20)
    plain = FuncFormatter(lambda value, _: f"{value:g}")
    for ticks in (axis.xaxis, axis.yaxis):
        ticks.set_major_formatter(plain)
        ticks.set_minor_formatter(NullFormatter())
    axis.set_xlabel("level e of relative excess (L - L*) / (L(W=0) - L*)  (tighter to the right)")
    axis.set_ylabel("speed-up S = T_baseline / T_contender")
    axis.set_title(title, fontsize=10)
    axis.grid(alpha=0.3, which="both", lw=0.5)
    axis.legend(
        fontsize=7,
        loc="center left",
        bbox_to_anchor=(1.01, 0.5),
        title="^ / v: lower / upper bound\nlines: S = 1, 2 (--), 10 (:)",
        title_fontsize=7,
    )
    figure.tight_layout()
    return save(figure, path_stem)
