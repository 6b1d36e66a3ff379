"""Figure 3: depth 1, 2, 3 linear networks (hidden width 1) under gradient descent on the
Ethanol problem, l2 (left) and l4 (right), best learning rate of the grid per curve.

Paper's finding: with l2, deeper networks converge slightly *slower*; with l4, deeper
networks converge *much faster* than the linear model.

    python -m reproduce.figure3 [--quick] [--losses 4] [--steps N] [--preprocessing ...]
"""

import dataclasses

from reproduce import cli, common
from reproduce.study import criteria
from tfovp.families import CurveSpec


@dataclasses.dataclass
class Config(common.LinearConfig):
    losses: tuple[float, ...] = cli.setting((2.0, 4.0), "p of the l_p losses, one panel each (>= 1)")
    depths: tuple[int, ...] = cli.setting((1, 2, 3), "depths compared, hidden widths 1 (>= 1; include 1)")

    def validate(self):
        super().validate()
        self.check_losses()
        cli.check_values("depths", self.depths, lambda n: n >= 1, "integers >= 1")


def label(depth):
    return "linear model (depth 1)" if depth == 1 else f"depth-{depth} net"


def specs(config):
    return [CurveSpec(label(n), depth=n, loss=p) for p in config.losses for n in config.depths]


def planned(config):
    """Every family the figure trains."""
    return specs(config)


def speedup_pairs(config):
    """(contender, baseline, p) of every speed-up the figure measures: each deeper net
    against the linear model."""
    deeper = [n for n in config.depths if n > 1]
    return [(label(n), label(1), p) for p in config.losses for n in deeper] if 1 in config.depths else []


def claims_of(config, measures):
    """The figure's claim rows from `measures` (`common.Measures`: a run's families, or
    its committed outputs), the speed-ups of `speedup_pairs` measured."""
    speeds = {(n, p): measures.speed(label(n), p) for p in config.losses for n in config.depths}
    claims = criteria.figure3(speeds, config.setting_text())
    for p, claim, kwargs in (
        (2.0, "l2: deeper is not faster (slightly slower)" + criteria.SPEED_UP, {"not_faster": True}),
        (4.0, "l4: deeper is much faster" + criteria.SPEED_UP, {"factor": criteria.FASTER_FACTOR}),
    ):
        chosen = [c for name, c in measures.comparisons.items() if name.endswith(f"(l{p:g})")]
        if chosen:
            claims.append(measures.speedup_claims("figure3", claim, chosen, **kwargs))
    return claims


def run(config, workdir, job=None):
    def body(figure):
        figure.expect(planned(config))
        for spec in specs(config):
            figure.family(spec)
        panels = [figure.panel(f"l{p:g} loss", [(label(n), p) for n in config.depths]) for p in config.losses]
        _, summary = figure.write_speedups(speedup_pairs(config))
        return figure.write(panels, claims_of(config, figure), {"speedup": summary})

    return common.run_figure("figure3", config, workdir, job, body)


def main(argv=None):
    return cli.main(run, Config, __doc__, argv, prog="python -m reproduce.figure3")


if __name__ == "__main__":
    main()
