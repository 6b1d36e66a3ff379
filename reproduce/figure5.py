"""Figure 5 (left): deeper networks, near-zero against identity initialization, Ethanol.

Depth 4 and depth 8 nets (hidden width 1) under GD, from near-zero init (i.i.d.
N(0, 0.01^2)) and from identity init (the same plus 1 on the diagonal of every factor),
against the linear model; 100,000 iterations; l4 by default (the paper does not say
which loss; this is recorded). Best rate of the grid per curve.

Paper's finding: from near-zero init the depth-4 net makes visible progress only after
~65K iterations and the depth-8 net is stuck at 100K (every rate diverges or stalls);
from identity init both move at once, and deeper is faster.

The right panel trains TensorFlow's MNIST tutorial, original and overparameterized,
with `mnist_tutorial.convolutional` (see reproduce/mnist_panel.py) for the tutorial's
10 epochs: 54 minutes measured on 2 shared CPU cores (about 30 on idle ones, estimated
from bench/mnist_speed.py). `--panels left` skips it
(and is what `--quick` does unless `--panels` is given); `--resume` keeps a finished
model.

    python -m reproduce.figure5 [--quick] [--steps N] [--losses 2] [--panels left] [--resume] ...
"""

import dataclasses

from reproduce import common
from tfovp.claims import Claim, fmt_iterations, verdict
from tfovp.experiment import CurveSpec

CURVES = [("linear model (depth 1)", 1, "near_zero"), ("depth-4 net, near-zero init", 4, "near_zero"),
          ("depth-8 net, near-zero init", 8, "near_zero"), ("depth-4 net, identity init", 4, "identity"),
          ("depth-8 net, identity init", 8, "identity")]
MOVED = 0.9  # relative excess loss below which a curve has made visible progress


@dataclasses.dataclass
class Config(common.Common):
    steps: int = 100_000  # the paper's 100K iterations
    losses: tuple = (4.0,)  # l_p losses, one panel each; the paper does not say (l4 chosen)
    late_fraction: float = 0.1  # "moves only late": progress only after this fraction of the budget
    at_once_fraction: float = 0.01  # "moves at once": progress within this fraction of the budget
    panels: str = "left,right"  # "left" (linear nets), "right" (MNIST tutorial) or both
    mnist_epochs: float = 10.0  # right panel: the tutorial's 10 epochs
    mnist_steps: int = 0  # right panel: stop after this many steps instead (0: use the epochs)
    mnist_seed: int = 66478  # right panel: the tutorial's graph seed
    l2_on: str = "product"  # right panel: L2 term on the product kernels or on the factors
    mnist_self_test: bool = False  # right panel on the tutorial's fake data (smoke test)

    QUICK = {"steps": 600, "panels": "left"}  # --quick: the MNIST panel only if asked for


def specs(p):
    return [CurveSpec(label, depth=depth, initializer=init, loss=p) for label, depth, init in CURVES]


def moved_at(run, label, p):
    """Iterations until the best rate's relative excess stays <= MOVED (None: never)."""
    record = run.records[(label, p)]
    summary = record["summaries"][str(record["seeds"][0])]
    if summary["best_index"] is None:
        return None
    return summary["per_rate"][summary["best_index"]]["iterations"][str(MOVED)]


def claims_for(summaries, config, p, setting):
    """Claims from {label: summary of its rates} (shared with the sensitivity study)."""
    budget = config.steps

    def moved(label):
        s = summaries[label]
        return None if s["best_index"] is None else s["per_rate"][s["best_index"]]["iterations"][str(MOVED)]

    def speed(label):
        return summaries[label]["iterations_to_level"], summaries[label]["final_relative_excess"]

    stuck_rates = summaries["depth-8 net, near-zero init"]["per_rate"]
    finals = [r["final_relative_excess"] for r in stuck_rates if not r["diverged"]]
    stuck = all(f is None or f > MOVED for f in finals)
    late = moved("depth-4 net, near-zero init")
    at_once = [moved("depth-4 net, identity init"), moved("depth-8 net, identity init")]
    deeper = common.faster(speed("depth-8 net, identity init"), speed("depth-4 net, identity init"))
    return [
        Claim("figure5", f"l{p:g}: near-zero init, depth 8 is stuck at the end of the budget (paper: 100K)",
              f"every rate diverges or ends ({budget:,} iterations) with relative excess > {MOVED:g}",
              f"{sum(r['diverged'] for r in stuck_rates)} of {len(stuck_rates)} rates diverged; lowest final "
              f"relative excess of the others: {min(finals) if finals else 'none'}",
              verdict(stuck), setting),
        Claim("figure5", f"l{p:g}: near-zero init, depth 4 moves only late (paper: ~65K)",
              f"best rate needs >= {config.late_fraction:g} x budget = {int(config.late_fraction * budget):,} "
              f"iterations to stay below relative excess {MOVED:g}",
              f"best rate: {fmt_iterations(late)}", verdict(late is None or late >= config.late_fraction * budget),
              setting),
        Claim("figure5", f"l{p:g}: identity init, depths 4 and 8 move at once",
              f"both stay below relative excess {MOVED:g} within {config.at_once_fraction:g} x budget = "
              f"{int(config.at_once_fraction * budget):,} iterations",
              f"depth 4: {fmt_iterations(at_once[0])}, depth 8: {fmt_iterations(at_once[1])}",
              verdict(all(a is not None and a <= config.at_once_fraction * budget for a in at_once)), setting),
        Claim("figure5", f"l{p:g}: identity init, deeper is faster",
              "iterations to the level, best rate each: depth 8 <= depth 4",
              f"depth 8: {fmt_iterations(speed('depth-8 net, identity init')[0])}, "
              f"depth 4: {fmt_iterations(speed('depth-4 net, identity init')[0])}",
              verdict(deeper), setting),
    ]


def run(config, out):
    run = common.Run("figure5", config, out)
    claims, panels = [], []
    setting = common.setting_text(config)
    chosen = [p.strip() for p in config.panels.split(",") if p.strip()]
    if not chosen or set(chosen) - {"left", "right"}:
        raise ValueError(f"--panels must name 'left' and/or 'right'. Received: {config.panels!r}")
    for p in config.losses if "left" in chosen else ():
        for spec in specs(p):
            run.curve(spec)
        summaries = {label: run.records[(label, p)]["summaries"][str(config.seed)] for label, _, _ in CURVES}
        claims += claims_for(summaries, config, p, setting)
        panels.append(common.panel(run, f"left: l{p:g} loss, GD, {config.steps:,} iterations",
                                   [(label, p) for label, _, _ in CURVES]))
    extra = {}
    if "right" in chosen:
        from reproduce import mnist_panel

        results = mnist_panel.train_both(config, out)
        panels.append(mnist_panel.panel(results))
        budget = results["original"]["steps"]
        claims += mnist_panel.claims(results, f"MNIST tutorial, {budget:,} steps, L2 on {config.l2_on}, "
                                              f"seed {config.mnist_seed}")
        extra["mnist"] = {name: {"parameters": r["parameters"], "test_error": r["test_error"], "steps": r["steps"],
                                 "seconds": r["seconds"]} for name, r in results.items()}
    return run.write(panels, claims, extra)


def main(argv=None):
    return common.main_wrapper(run, Config, __doc__, argv)


if __name__ == "__main__":
    main()
