"""Figures of loss curves: one column per panel, excess loss L - L* (log) above the raw
loss (log); diverged or empty curves are never drawn (they are listed in the legend
title instead)."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def smooth(values, window):
    """Trailing moving average over `window` steps (shorter at the start)."""
    values = np.asarray(values, dtype=float)
    sums = np.cumsum(np.insert(values, 0, 0.0))
    counts = np.minimum(np.arange(1, len(values) + 1), window)
    return (sums[1:] - sums[np.maximum(np.arange(1, len(values) + 1) - window, 0)]) / counts


def _minibatch_panel(top, bottom, panel):
    """A stochastic-training panel: raw and smoothed minibatch loss, validation error."""
    for label, steps, losses, errors in panel["curves"]:
        line, = top.plot(steps, losses, lw=0.5, alpha=0.3)
        top.plot(steps, smooth(losses, panel["window"]), color=line.get_color(), lw=1.6,
                 label=f"{label.split(' (')[0]} (mean of {panel['window']} steps)")  # details: bottom legend
        keep = [i for i, e in enumerate(errors) if e is not None]
        bottom.plot(np.asarray(steps)[keep], np.asarray(errors, dtype=object)[keep].astype(float),
                    color=line.get_color(), lw=1.4, marker=".", label=label)
    top.set_title(panel["title"], fontsize=10)
    top.set_ylabel("minibatch loss (with L2 term)")
    bottom.set_ylabel("validation error (%)")
    positive = all(e is None or e > 0 for _, _, _, errors in panel["curves"] for e in errors)
    for ax in (top, bottom):
        ax.set_yscale("log" if ax is top or positive else "linear")
        ax.set_xlabel("iteration")
        ax.grid(alpha=0.3, which="both", lw=0.5)
        ax.legend(fontsize=7)


def plot_panels(panels, path_stem, title=None, log_x=False):
    """panels: list of dicts {"title", "optimum", "curves": [(label, steps, losses)],
    "notes": [str]}, or {"kind": "minibatch", "title", "window", "curves":
    [(label, steps, losses, validation errors or None)]}. Writes `path_stem`.png and
    .pdf; returns the paths."""
    columns = len(panels)
    figure, axes = plt.subplots(2, columns, figsize=(5.2 * columns, 7.5), squeeze=False)
    for col, panel in enumerate(panels):
        top, bottom = axes[0, col], axes[1, col]
        if panel.get("kind") == "minibatch":
            _minibatch_panel(top, bottom, panel)
            continue
        for label, steps, losses in panel["curves"]:
            losses = np.asarray(losses, dtype=float)
            keep = np.isfinite(losses)
            if not keep.any():
                continue
            excess = losses[keep] - panel["optimum"]
            positive = excess > 0
            line, = top.plot(np.asarray(steps)[keep][positive], excess[positive], label=label, lw=1.4)
            bottom.plot(np.asarray(steps)[keep], losses[keep], color=line.get_color(), lw=1.4)
        top.set_title(panel["title"], fontsize=10)
        top.set_ylabel("excess loss  L - L*")
        bottom.set_ylabel("training loss  L")
        bottom.axhline(panel["optimum"], color="black", ls=":", lw=1, label="L* (optimum)")
        for ax in (top, bottom):
            ax.set_yscale("log")
            if log_x:
                ax.set_xscale("symlog", linthresh=10)
            ax.set_xlabel("iteration")
            ax.grid(alpha=0.3, which="both", lw=0.5)
        top.legend(fontsize=7, title="\n".join(panel.get("notes", [])) or None, title_fontsize=6)
        bottom.legend(fontsize=7, loc="upper right")
    if title:
        figure.suptitle(title, fontsize=11)
    figure.tight_layout()
    paths = [f"{path_stem}.png", f"{path_stem}.pdf"]
    for path in paths:
        figure.savefig(path, dpi=130)
    plt.close(figure)
    return paths
