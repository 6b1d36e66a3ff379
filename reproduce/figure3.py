"""Figure 3: depth 1, 2, 3 linear networks (hidden width 1) under gradient descent on the
Ethanol problem, l2 (left) and l4 (right), best learning rate of the grid per curve.

Paper's finding: with l2, deeper networks converge slightly *slower*; with l4, deeper
networks converge *much faster* than the linear model.

    python -m reproduce.figure3 [--quick] [--losses 4] [--steps N] [--preprocessing ...]
"""

import dataclasses

from reproduce import common
from tfovp.claims import Claim, fmt_iterations, verdict
from tfovp.experiment import CurveSpec


@dataclasses.dataclass
class Config(common.Common):
    losses: tuple = (2.0, 4.0)  # l_p losses, one panel each
    depths: tuple = (1.0, 2.0, 3.0)  # depths compared (hidden widths 1)


def label(depth):
    return "linear model (depth 1)" if depth == 1 else f"depth-{depth} net"


def specs(config):
    return [CurveSpec(label(int(n)), depth=int(n), loss=p) for p in config.losses for n in config.depths]


def claims(speeds, setting=""):
    """Claims of Fig. 3 from {(depth, p): (iterations, final relative excess)}."""
    rows = []
    if (1, 2.0) in speeds:
        deeper = [n for (n, p) in speeds if p == 2.0 and n > 1]
        measured = ", ".join(f"depth {n}: {fmt_iterations(speeds[(n, 2.0)][0])}" for n in sorted({1, *deeper}))
        holds = [common.faster(speeds[(1, 2.0)], speeds[(n, 2.0)], factor=0.9) for n in deeper]
        rows.append(Claim("figure3", "l2: deeper is not faster (slightly slower)",
                          "iterations to the level (best rate each): every depth > 1 needs >= 0.9x those of depth 1",
                          measured, verdict(None if None in holds else all(holds)), setting))
    if (1, 4.0) in speeds:
        deeper = [n for (n, p) in speeds if p == 4.0 and n > 1]
        measured = ", ".join(f"depth {n}: {fmt_iterations(speeds[(n, 4.0)][0])}" for n in sorted({1, *deeper}))
        holds = [common.faster(speeds[(n, 4.0)], speeds[(1, 4.0)], factor=2.0) for n in deeper]
        rows.append(Claim("figure3", "l4: deeper is much faster",
                          "iterations to the level (best rate each): every depth > 1 needs <= 1/2 of those of depth 1",
                          measured, verdict(None if None in holds else all(holds)), setting))
    return rows


def run(config, out):
    run = common.Run("figure3", config, out)
    for spec in specs(config):
        run.curve(spec)
    speeds = {(int(n), p): common.speed(run, label(int(n)), p) for p in config.losses for n in config.depths}
    panels = [common.panel(run, f"l{p:g} loss", [(label(int(n)), p) for n in config.depths])
              for p in config.losses]
    return run.write(panels, claims(speeds, common.setting_text(config)))


def main(argv=None):
    return common.main_wrapper(run, Config, __doc__, argv)


if __name__ == "__main__":
    main()
