"""Figure 2: the end-to-end update rule (Eq. 10) against gradient descent on deep linear
networks, Ethanol, l2 and l4 panels.

For depth N = 2, 3 the learning rate eta_N is the best of the grid for the width-1 depth-N
net (as in Figure 3). At eta_N, nets of hidden widths 1, 10, 100 (near-zero init) are
trained by GD, and a linear model by the end-to-end rule of depth N started from the
same W_e(0) as each net; the linear model (depth 1, best rate) is shown for reference.
Also written: the distance between each net's W_e and its rule's W_e over time
(figure2_distance.csv/.png, or figure2-TAG_distance.* with --tag).

Paper's finding: the rule tracks the deep nets closely, width has a negligible effect,
and (l4) deeper converges faster.

    python -m reproduce.figure2 [--quick] [--losses 4] [--widths 1,10] ...
"""

import dataclasses

import numpy as np

from reproduce import cli, common
from reproduce.figure3 import label as depth_label
from reproduce.study import criteria, outputs
from tfovp.convergence import relative_excess
from tfovp.diagnostics import trajectory_distance
from tfovp.families import CurveSpec


@dataclasses.dataclass
class Config(common.LinearConfig):
    losses: tuple[float, ...] = cli.setting((2.0, 4.0), "p of the l_p losses, one panel each (>= 1)")
    depths: tuple[int, ...] = cli.setting((2, 3), "depths N of the nets and of the rule (>= 2)")
    widths: tuple[int, ...] = cli.setting((1, 10, 100), "hidden widths of the nets (>= 1)")

    def validate(self):
        super().validate()
        self.check_losses()
        cli.check_values("depths", self.depths, lambda n: n >= 2, "integers >= 2")
        cli.check_values("widths", self.widths, lambda w: w >= 1, "integers >= 1")
        cli.check(not self.bias, "--bias: Figure 2 compares nets with the end-to-end rule (Eq. 10), which has no bias")


def net_label(n, w):
    return f"depth-{n} net, width {w}"


def rule_label(n, w):
    return f"rule N={n}, W_e(0) of width {w}"


def net_spec(n, w, p, rate):
    return CurveSpec(net_label(n, w), depth=n, hidden_widths=w, loss=p, learning_rates=(rate,), record_end_to_end=True)


def rule_spec(n, w, p, rate):
    return CurveSpec(
        rule_label(n, w),
        depth=n,
        hidden_widths=w,
        loss=p,
        update="end_to_end",
        learning_rates=(rate,),
        record_end_to_end=True,
    )


def planned(config):
    """Every family the figure trains: the grids, then a net and a rule per depth and width
    (their learning rate is chosen on the way; 1.0 stands for it)."""
    grids = [CurveSpec(depth_label(n), depth=n, loss=p) for p in config.losses for n in (1, *config.depths)]
    return grids + [
        spec
        for p in config.losses
        for n in config.depths
        for w in config.widths
        for spec in (net_spec(n, w, p, 1.0), rule_spec(n, w, p, 1.0))
    ]


def tracking(n, w, net, rule, scale):
    """A criteria.Tracking record and the relative W_e distance per recorded step of
    one net and its rule (one copy each)."""
    distance = trajectory_distance(net.end_to_end[:, 0], rule.end_to_end[:, 0]) / scale
    excess = [relative_excess(family.losses[:, 0], family.optimum) for family in (net, rule)]
    finite = all(np.isfinite(e).all() for e in excess)
    gap = float(np.max(np.abs(excess[0] - excess[1]))) if finite else float("inf")
    return criteria.Tracking(
        n, w, float(np.nanmax(distance)), gap, bool(net.diverged[0]), bool(rule.diverged[0])
    ), distance


def run(config, workdir, job=None):
    def body(figure):
        figure.expect(planned(config))
        pairs, distances, panels, claims = [], {}, [], []
        for p in config.losses:
            figure.family(CurveSpec(depth_label(1), depth=1, loss=p))
            scale = np.linalg.norm(figure.problem.optimal_kernel(p))
            tracked = []
            for n in config.depths:
                rate = (
                    figure.family(CurveSpec(depth_label(n), depth=n, loss=p)).summary(config.level).best_learning_rate
                )
                if rate is None:
                    continue
                shown, styles = [(depth_label(1), p)], {depth_label(1): ("-", "black")}
                for i, w in enumerate(config.widths):
                    net, rule = figure.family(net_spec(n, w, p, rate)), figure.family(rule_spec(n, w, p, rate))
                    record, distances[(p, n, w, rate)] = tracking(n, w, net, rule, scale)
                    tracked.append(record)
                    shown += [(net_label(n, w), p), (rule_label(n, w), p)]
                    styles.update({net_label(n, w): ("-", f"C{i}"), rule_label(n, w): ("--", f"C{i}")})
                title = f"l{p:g} loss, depth {n} (lr {rate:g}): nets solid, their end-to-end rules dashed"
                panels.append(figure.panel(title, shown, styles=styles))
            claims.append(criteria.figure2_tracking(p, tracked, config.setting_text()))
            for n in sorted({t.depth for t in tracked}):
                speeds = {w: figure.speed(net_label(n, w), p) for w in config.widths}
                claims.append(criteria.figure2_width(p, n, speeds, config.setting_text()))
            pairs += [(p, t) for t in tracked]
        if 4.0 in config.losses and {2, 3} <= set(config.depths):
            claims.append(
                criteria.figure2_depth(
                    figure.speed(depth_label(3), 4.0), figure.speed(depth_label(2), 4.0), config.setting_text()
                )
            )
        _write_distance(figure, distances)
        extra = {
            "max_relative_distance": {f"l{p:g} N={t.depth} width {t.width}": t.distance for p, t in pairs},
            "max_relative_excess_gap": {f"l{p:g} N={t.depth} width {t.width}": t.loss_gap for p, t in pairs},
        }
        return figure.write(panels, claims, extra)

    return common.run_figure("figure2", config, workdir, job, body)


def _write_distance(figure, distances):
    """<figure>_distance.csv and .png (figure2-1e5_distance.* with --tag 1e5): ||W_e(net) -
    W_e(rule)|| / ||W*|| over iterations."""
    import pandas as pd
    from matplotlib.figure import Figure

    from reproduce.study.plotting import save

    if not distances:
        return
    rows = [
        pd.DataFrame(
            {
                "loss_p": p,
                "depth": n,
                "width": w,
                "learning_rate": rate,
                "step": figure.families[(net_label(n, w), p)].steps,
                "relative_distance": gap,
            }
        )
        for (p, n, w, rate), gap in distances.items()
    ]
    outputs.write_csv(figure.out / f"{figure.figure}_distance.csv", pd.concat(rows, ignore_index=True))
    plot = Figure(figsize=(9, 4.5), layout="constrained")
    axis = plot.subplots()
    pairs = sorted({(n, w) for _, n, w, _ in distances})
    losses = sorted({p for p, _, _, _ in distances})
    for (p, n, w, _), gap in sorted(distances.items()):
        steps = figure.families[(net_label(n, w), p)].steps
        keep = np.isfinite(gap) & (gap > 0)
        style = ("-", "--", ":", "-.")[losses.index(p) % 4]  # line style: the loss; colour: depth and width
        axis.plot(steps[keep], gap[keep], ls=style, color=f"C{pairs.index((n, w)) % 10}", lw=1.3,
                  label=f"l{p:g}, N={n}, width {w}")  # fmt: skip
    axis.set_yscale("log")
    axis.set_xscale("symlog", linthresh=10)
    axis.set_xlim(left=0)
    axis.set_xlabel("iteration (linear to 10, then log)")
    axis.set_ylabel("||W_e(net) - W_e(rule)|| / ||W*||")
    axis.set_title(f"{figure.figure}: distance between each deep net and its end-to-end rule", fontsize=10)
    axis.grid(alpha=0.3, which="both", lw=0.5)
    axis.legend(fontsize=7, ncol=len(losses), loc="center left", bbox_to_anchor=(1.01, 0.5))
    save(plot, figure.out / f"{figure.figure}_distance", formats=("png",))


def main(argv=None):
    return cli.main(run, Config, __doc__, argv, prog="python -m reproduce.figure2")


if __name__ == "__main__":
    main()
