"""Figure 2: the end-to-end update rule (Eq. 10) against gradient descent on deep linear
networks, Ethanol, l2 and l4 panels.

For depth N = 2, 3 the learning rate eta_N is the best of the grid for the width-1 depth-N
net (as in Figure 3). At eta_N, nets of hidden widths 1, 10, 100 (near-zero init) are
trained by GD, and a linear model by the end-to-end rule of depth N started from the
same W_e(0) as each net; the linear model (depth 1, best rate) is shown for reference.
Also written: the distance between each net's W_e and its rule's W_e over time
(figure2_distance.csv/.png).

Paper's finding: the rule tracks the deep nets closely, width has a negligible effect,
and (l4) deeper converges faster.

    python -m reproduce.figure2 [--quick] [--losses 4] [--widths 1,10] ...
"""

import dataclasses

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from reproduce import common  # noqa: E402
from reproduce.figure3 import label as depth_label  # noqa: E402
from tfovp.claims import Claim, fmt_iterations, verdict  # noqa: E402
from tfovp.experiment import CurveSpec  # noqa: E402


@dataclasses.dataclass
class Config(common.Common):
    losses: tuple = (2.0, 4.0)  # l_p losses, one panel each
    depths: tuple = (2.0, 3.0)  # depths N of the nets and of the rule
    widths: tuple = (1.0, 10.0, 100.0)  # hidden widths of the nets
    tracking_tolerance: float = 0.05  # max ‖W_e(net) - W_e(rule)‖ / ‖W*‖, and max gap of their
    # relative excess losses, that count as tracking
    width_tolerance: float = 1.1  # max ratio of iterations to the level across widths


def net_label(n, w):
    return f"depth-{n} net, width {w}"


def rule_label(n, w):
    return f"rule N={n}, W_e(0) of width {w}"


def _trajectory(record):
    return np.asarray(record["end_to_end"], dtype=float)[:, 0]  # (R, d) of the single copy


def run(config, out):
    run = common.Run("figure2", config, out)
    distances, loss_gaps, rows, claims = {}, {}, [], []
    panels = []
    for p in config.losses:
        run.curve(CurveSpec(depth_label(1), depth=1, loss=p))
        labels = [(depth_label(1), p)]
        scale = np.linalg.norm(run.optimal_kernel(p))
        for n in (int(v) for v in config.depths):
            grid = run.curve(CurveSpec(depth_label(n), depth=n, loss=p))
            rate = grid["summaries"][str(config.seed)]["best_learning_rate"]
            if rate is None:
                continue
            for w in (int(v) for v in config.widths):
                net = run.curve(CurveSpec(net_label(n, w), depth=n, hidden_widths=w, loss=p,
                                          learning_rates=(rate,), record_end_to_end=True))
                rule = run.curve(CurveSpec(rule_label(n, w), depth=n, hidden_widths=w, loss=p,
                                           update="end_to_end", learning_rates=(rate,),
                                           record_end_to_end=True))
                gap = np.linalg.norm(_trajectory(net) - _trajectory(rule), axis=-1) / scale
                distances[(p, n, w)] = gap
                loss_gaps[(p, n, w)] = _loss_gap(net, rule, run.optimum(p))
                rows.append(pd.DataFrame({"loss_p": p, "depth": n, "width": w, "learning_rate": rate,
                                          "step": net["steps"], "relative_distance": gap}))
                labels.append((net_label(n, w), p))
            labels.append((rule_label(n, 1), p))
        panels.append(common.panel(run, f"l{p:g} loss", labels))
        claims += _claims(run, config, p, distances, loss_gaps)
    claims += _depth_claim(run, config)
    _write_distance(rows, distances, run)
    extra = {"max_relative_distance": {f"l{p:g} N={n} width {w}": float(np.nanmax(d))
                                       for (p, n, w), d in distances.items()},
             "max_relative_excess_gap": {f"l{p:g} N={n} width {w}": g for (p, n, w), g in loss_gaps.items()}}
    return run.write(panels, claims, extra)


def _loss_gap(net, rule, optimum):
    """max_t |e_net(t) - e_rule(t)| of the relative excess losses (inf if one diverged)."""
    curves = [np.array([np.nan if row[0] is None else row[0] for row in r["losses"]]) for r in (net, rule)]
    excess = [(c - optimum) / (c[0] - optimum) for c in curves]
    if not all(np.isfinite(e).all() for e in excess):
        return float("inf")
    return float(np.max(np.abs(excess[0] - excess[1])))


def _claims(run, config, p, distances, loss_gaps):
    setting = common.setting_text(config)
    gaps = {k: float(np.nanmax(v)) for k, v in distances.items() if k[0] == p}
    rows = []
    if gaps:
        worst = max(max(gaps.values()), max(g for k, g in loss_gaps.items() if k[0] == p))
        measured = "; ".join(f"N={n} w={w}: W_e {g:.3g}, loss {loss_gaps[(p, n, w)]:.3g}"
                             for (_, n, w), g in sorted(gaps.items()))
        rows.append(Claim("figure2", f"l{p:g}: the end-to-end rule tracks depth-N GD",
                          f"for every depth and width (same eta, same W_e(0)), max over iterations of "
                          f"‖W_e(net) - W_e(rule)‖ / ‖W*‖ and of the gap between their relative excess losses "
                          f"(L - L*)/(L0 - L*) both <= {config.tracking_tolerance:g} (inf: the rule diverged)",
                          measured, verdict(worst <= config.tracking_tolerance), setting))
    for n in sorted({k[1] for k in gaps}):
        speeds = [common.speed(run, net_label(n, int(w)), p) for w in config.widths]
        iterations = [s[0] for s in speeds]
        finals = [s[1] for s in speeds]
        if all(i is not None for i in iterations):
            ratio = max(iterations) / max(min(iterations), 1)
            holds = ratio <= config.width_tolerance
        elif all(i is None for i in iterations) and all(f is not None for f in finals):
            ratio = max(finals) / max(min(finals), 1e-300)
            holds = ratio <= config.width_tolerance
        else:
            ratio, holds = float("nan"), False
        measured = ", ".join(f"width {int(w)}: {fmt_iterations(i)}" for w, i in zip(config.widths, iterations))
        rows.append(Claim("figure2", f"l{p:g}, depth {n}: width has a negligible effect",
                          f"iterations to the level across widths {', '.join(str(int(w)) for w in config.widths)} "
                          f"within a factor {config.width_tolerance:g} (final excess if none converges)",
                          f"{measured} (ratio {ratio:.3g})", verdict(holds), setting))
    return rows


def _depth_claim(run, config):
    if 4.0 not in config.losses or not {2.0, 3.0} <= set(config.depths):
        return []
    deep, shallow = common.speed(run, depth_label(3), 4.0), common.speed(run, depth_label(2), 4.0)
    return [Claim("figure2", "l4: deeper converges faster",
                  "iterations to the level, best rate each: depth-3 net < depth-2 net",
                  f"depth 3: {fmt_iterations(deep[0])}, depth 2: {fmt_iterations(shallow[0])}",
                  verdict(common.faster(deep, shallow)), common.setting_text(config))]


def _write_distance(rows, distances, run):
    if not rows:
        return
    pd.concat(rows, ignore_index=True).to_csv(run.out / "figure2_distance.csv", index=False, float_format="%.8g")
    figure, axis = plt.subplots(figsize=(7, 4.5))
    steps = None
    for (p, n, w), gap in sorted(distances.items()):
        steps = np.asarray(run.records[(net_label(n, w), p)]["steps"])
        keep = np.isfinite(gap) & (gap > 0)
        axis.plot(steps[keep], gap[keep], label=f"l{p:g}, N={n}, width {w}", lw=1.2)
    axis.set_yscale("log")
    axis.set_xlabel("iteration")
    axis.set_ylabel("||W_e(net) - W_e(rule)|| / ||W*||")
    axis.set_title("Figure 2: distance between the deep nets and the end-to-end rule")
    axis.grid(alpha=0.3, which="both", lw=0.5)
    axis.legend(fontsize=7, ncol=2)
    figure.tight_layout()
    figure.savefig(run.out / "figure2_distance.png", dpi=130)
    plt.close(figure)


def main(argv=None):
    return common.main_wrapper(run, Config, __doc__, argv)


if __name__ == "__main__":
    main()
