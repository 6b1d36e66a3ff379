"""Figures of loss curves: one column per panel. A `LossPanel` shows the excess loss
L - L* (log) above the raw loss (log); a `MinibatchPanel` (stochastic training) the raw
and smoothed minibatch loss above the validation error. Diverged or empty curves are
never drawn (a panel lists them in its notes instead).

Readability rules: every legend sits below its column, outside the data; a curve that
lies on top of one drawn before it (within 1 % everywhere) gets another line style and
markers, and its legend entry says so; log axes label their ticks in one style; long
titles wrap to the figure's width.

Figures are drawn on `matplotlib.figure.Figure` objects, never through pyplot, so
importing or using this module does not touch the global matplotlib backend of a
notebook or application; files are written atomically.
"""

import dataclasses
import textwrap

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogFormatterSciNotation, NullFormatter

from reproduce.study.criteria import smooth
from tfovp.files import atomic_writer


@dataclasses.dataclass(frozen=True)
class Curve:
    label: str
    steps: np.ndarray
    losses: np.ndarray  # NaN where not recorded or diverged
    style: str = "-"  # line style, e.g. "--" for a curve that should be read against a solid one
    color: str | None = None  # None: the next colour of the cycle; curves may share one on purpose


COINCIDENT = 0.01  # curves within 1 % of each other at every common step are drawn distinguishably
OTHER_STYLES = ("--", ":", "-.")
MARKERS = ("o", "s", "^", "D")


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
    smoothed: bool = False  # `losses` are already the panel's moving average (a run's compact record)


@dataclasses.dataclass
class MinibatchPanel:
    title: str
    window: int  # steps of the moving average
    curves: list  # of MinibatchCurve
    # What the curves' `losses` (top) and `errors` (bottom, where finite) hold:
    loss_name: str = "minibatch loss"
    loss_axis: str = "minibatch loss (with L2 term)"
    lower_name: str = "validation error"
    lower_axis: str = "validation error (%)"


def _minibatch_panel(top, bottom, panel):
    for curve in panel.curves:
        if curve.smoothed:  # rebuilt from a compact record: the moving average every 100 steps
            (line,) = top.plot(
                curve.steps,
                curve.losses,
                lw=1.6,
                label=f"{curve.label}: {panel.loss_name} (mean of {panel.window} steps)",
            )
        else:
            (line,) = top.plot(curve.steps, curve.losses, lw=0.5, alpha=0.3)
            top.plot(
                curve.steps,
                smooth(curve.losses, panel.window),
                color=line.get_color(),
                lw=1.6,
                label=f"{curve.label}: {panel.loss_name} (mean of {panel.window} steps; faint: every step)",
            )
        errors = np.asarray(curve.errors, dtype=float)
        keep = np.isfinite(errors)
        bottom.plot(
            np.asarray(curve.steps)[keep],
            errors[keep],
            color=line.get_color(),
            lw=1.4,
            marker=".",
            label=f"{curve.label}: {panel.lower_name}",
        )
    top.set_title(panel.title, fontsize=10)
    top.set_ylabel(panel.loss_axis)
    bottom.set_ylabel(panel.lower_axis)
    errors = [e for c in panel.curves for e in np.asarray(c.errors, dtype=float) if np.isfinite(e)]
    positive = all(e > 0 for e in errors)
    for ax in (top, bottom):
        ax.set_yscale("log" if ax is top or positive else "linear")
        ax.set_xlabel("iteration")
        ax.grid(alpha=0.3, which="both", lw=0.5)
    return [], []


def coincides(steps_a, values_a, steps_b, values_b, tolerance=COINCIDENT):
    """Whether two positive curves are within `tolerance` (relative) at every common step
    where both are finite (and share at least two such steps)."""
    common, ia, ib = np.intersect1d(steps_a, steps_b, return_indices=True)
    a, b = np.asarray(values_a, dtype=float)[ia], np.asarray(values_b, dtype=float)[ib]
    both = np.isfinite(a) & np.isfinite(b) & (a > 0) & (b > 0)
    return both.sum() >= 2 and bool(np.all(np.abs(np.log(a[both] / b[both])) <= np.log1p(tolerance)))


def _loss_panel(top, bottom, panel, log_x):
    drawn = []  # (label, steps, excess, style) of the curves drawn so far
    for curve in panel.curves:
        losses = np.asarray(curve.losses, dtype=float)
        keep = np.isfinite(losses)
        if not keep.any():
            continue
        steps, excess = np.asarray(curve.steps)[keep], losses[keep] - panel.optimum
        label, style, marker = curve.label, curve.style, None
        under = [d for d in drawn if d[3] == style and coincides(d[1], d[2], steps, excess)]
        if under:  # it would hide a curve drawn before it (or be hidden): another style, and say so
            taken = {d[3] for d in drawn}
            style = next((s for s in OTHER_STYLES if s not in taken), OTHER_STYLES[len(drawn) % len(OTHER_STYLES)])
            marker = MARKERS[len(drawn) % len(MARKERS)]
            label += f" [coincides with {under[0][0].split(' (')[0]}]"
        kwargs = {"ls": style, "lw": 1.4, "marker": marker, "markevery": 0.1, "ms": 4, "color": curve.color}
        positive = excess > 0
        (line,) = top.plot(steps[positive], excess[positive], label=label, **kwargs)
        bottom.plot(steps, losses[keep], **{**kwargs, "color": line.get_color()})
        drawn.append((curve.label, steps, excess, style))
    top.set_title(panel.title, fontsize=10)
    top.set_ylabel("excess loss  L - L*")
    bottom.set_ylabel("training loss  L")
    optimum = bottom.axhline(panel.optimum, color="black", ls=":", lw=1, label="L* (optimum)")
    for ax in (top, bottom):
        ax.set_yscale("log")
        if log_x:
            ax.set_xscale("symlog", linthresh=10)
            ax.set_xlim(left=0)
        ax.set_xlabel("iteration" + (" (linear to 10, then log)" if log_x else ""))
        ax.grid(alpha=0.3, which="both", lw=0.5)
    handles, labels = top.get_legend_handles_labels()
    notes = [Line2D([], [], ls="none", label=note) for note in panel.notes]
    return [*handles, optimum, *notes], [*labels, "L* (optimum), lower panel", *panel.notes]


def _leading_digit(value):
    return int(round(value / 10 ** np.floor(np.log10(value)))) if value > 0 else 0


def tidy_log_ticks(axis):
    """One tick-label style per log axis: 10^k at the decades when the axis spans more
    than two decades, else plain numbers at the decades and at 2 and 5 times them."""
    for ticks, scale, limits in ((axis.xaxis, axis.get_xscale(), axis.get_xlim()),
                                 (axis.yaxis, axis.get_yscale(), axis.get_ylim())):  # fmt: skip
        if scale != "log" or min(limits) <= 0:
            continue
        if np.log10(max(limits) / min(limits)) > 2:
            ticks.set_major_formatter(LogFormatterSciNotation())
            ticks.set_minor_formatter(NullFormatter())
        else:
            plain = FuncFormatter(lambda value, _: f"{value:g}" if _leading_digit(value) in (1, 2, 5) else "")
            ticks.set_major_formatter(plain)
            ticks.set_minor_formatter(plain)


def save(figure, path_stem, formats=("png", "pdf"), dpi=130):
    """Write `figure` to `path_stem`.<format> atomically; returns the paths."""
    paths = [f"{path_stem}.{suffix}" for suffix in formats]
    for path in paths:
        with atomic_writer(path, "wb") as handle:
            figure.savefig(handle, format=path.rsplit(".", 1)[1], dpi=dpi)
    return paths


def plot_panels(panels, path_stem, title=None, log_x=False):
    """Draw `panels` (LossPanel / MinibatchPanel) side by side, each column's legend
    below it; write `path_stem`.png and .pdf; returns the paths. `log_x`: a symlog
    iteration axis (linear to 10, then log), for the first iterations."""
    columns, column_width, panel_height = len(panels), 5.4, 3.6
    figure = Figure(figsize=(column_width * columns, 2 * panel_height + 1), layout="constrained")
    grid = figure.add_gridspec(3, columns)
    legends = []
    for col, panel in enumerate(panels):
        top, bottom = figure.add_subplot(grid[0, col]), figure.add_subplot(grid[1, col])
        if isinstance(panel, MinibatchPanel):
            _minibatch_panel(top, bottom, panel)
            handles, labels = [], []
            for ax in (top, bottom):
                more = ax.get_legend_handles_labels()
                handles, labels = handles + more[0], labels + more[1]
        else:
            handles, labels = _loss_panel(top, bottom, panel, log_x)
        for ax in (top, bottom):
            tidy_log_ticks(ax)
        legends.append((col, handles, [textwrap.fill(label, width=int(column_width * 13)) for label in labels]))
    lines = max(sum(label.count("\n") + 1 for label in labels) for _, _, labels in legends)
    legend_height = 0.16 * lines + 0.2
    grid.set_height_ratios([panel_height, panel_height, legend_height])
    figure.set_size_inches(column_width * columns, 2 * panel_height + legend_height + 0.8)
    for col, handles, labels in legends:
        legend = figure.add_subplot(grid[2, col])
        legend.axis("off")
        legend.legend(handles, labels, loc="upper center", fontsize=7, frameon=False)
    if title:
        figure.suptitle(textwrap.fill(title, width=int(column_width * columns * 11)), fontsize=11)
    return save(figure, path_stem)


def plot_speedups(comparisons, path_stem, title):
    """S(e) against the level e (log-log, tighter levels to the right), one line per
    comparison; lower bounds as upward and upper bounds as downward triangles; where the
    families were tuned (`tfovp.tuning`), the tuned S as the line and the paper grid's S
    as a thin dotted line of the same colour; the lines S = 1, 2 and 10 for reference.
    `comparisons` maps a legend label to a `criteria.Comparison`. Writes `path_stem`.png
    and .pdf."""
    figure = Figure(figsize=(10, 5 + 0.17 * len(comparisons)), layout="constrained")
    axis = figure.subplots()
    markers = {"lower bound": "^", "upper bound": "v"}
    drawn = {}  # the values of each comparison drawn so far -> its label
    for label, c in comparisons.items():
        values = tuple((s.level, s.value, s.kind) for s in c.speedups)
        same = drawn.get(values)
        drawn.setdefault(values, label)
        style = {"ls": "--", "mfc": "none", "ms_bound": 10} if same else {"ls": "-", "mfc": None, "ms_bound": 6}
        exact = [(s.level, s.value) for s in c.speedups if s.kind == "exact"]
        xs, ys = zip(*exact) if exact else ((), ())
        text = label + (f" [same values as {same.split(' vs ')[0]}]" if same else "")
        (line,) = axis.plot(xs, ys, marker="o", ms=3, lw=1.4, ls=style["ls"], label=text)
        for kind, marker in markers.items():
            bounds = [(s.level, s.value) for s in c.speedups if s.kind == kind]
            if bounds:
                axis.plot(*zip(*bounds), ls="none", marker=marker, ms=style["ms_bound"], mfc=style["mfc"],
                          color=line.get_color())  # fmt: skip
        if c.tuned:
            grid = [(s.level, s.value) for s in c.grid_speedups if s.kind == "exact"]
            if grid:
                axis.plot(*zip(*grid), ls=":", lw=1.0, marker=".", ms=3, color=line.get_color(), alpha=0.8)
    tuned = [c for c in comparisons.values() if c.tuned]
    key = "^ / v: lower / upper bound; grey lines: S = 1, 2 (--), 10 (:)"
    if tuned:
        key = f"solid: both rates tuned to within {tuned[0].rho:g}; dotted: the grid alone; " + key
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
    plain = FuncFormatter(lambda value, _: f"{value:g}")  # levels and speed-ups read best as plain numbers
    for ticks in (axis.xaxis, axis.yaxis):
        ticks.set_major_formatter(plain)
        ticks.set_minor_formatter(NullFormatter())
    axis.set_xlabel("level e of relative excess (L - L*) / (L(W=0) - L*)  (tighter to the right)")
    axis.set_ylabel("speed-up S = T_baseline / T_contender")
    axis.set_title(title, fontsize=10)
    axis.grid(alpha=0.3, which="both", lw=0.5)
    figure.legend(
        *axis.get_legend_handles_labels(),
        fontsize=7,
        loc="outside lower center",
        title=key,
        title_fontsize=7,
    )
    return save(figure, path_stem)
