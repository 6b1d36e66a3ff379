"""Figures of loss curves: one column per panel, excess loss L - L* (log) above the raw
loss (log); diverged or empty curves are never drawn (they are listed in the legend
title instead)."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_panels(panels, path_stem, title=None, log_x=False):
    """panels: list of dicts {"title", "optimum", "curves": [(label, steps, losses)],
    "notes": [str]}. Writes `path_stem`.png and .pdf; returns the paths."""
    columns = len(panels)
    figure, axes = plt.subplots(2, columns, figsize=(5.2 * columns, 7.5), squeeze=False)
    for col, panel in enumerate(panels):
        top, bottom = axes[0, col], axes[1, col]
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
