"""Figure 4: depth against adaptive optimizers on Ethanol, l4 loss, best rate of the grid each.

Left: the depth-3 net (width 1) under GD against the linear model under AdaGrad and under
AdaDelta. Right: Adam on the linear model against Adam on depth-2 and depth-3 nets.
Keras' optimizers with their default settings; only the learning rate is searched.

Paper's finding: depth-3 GD beats AdaGrad and AdaDelta; depth further accelerates Adam.

    python -m reproduce.figure4 [--quick] [--steps N] [--losses 4] ...
"""

import dataclasses

from reproduce import cli, common
from reproduce.study import criteria
from tfovp.families import CurveSpec

LEFT = [
    ("depth-3 net, GD", 3, "gd"),
    ("linear model, AdaGrad", 1, "adagrad"),
    ("linear model, AdaDelta", 1, "adadelta"),
]
RIGHT = [("linear model, Adam", 1, "adam"), ("depth-2 net, Adam", 2, "adam"), ("depth-3 net, Adam", 3, "adam")]
ROLES = {  # each curve's role in `criteria.figure4`, by label
    "gd": "depth-3 net, GD",
    "adagrad": "linear model, AdaGrad",
    "adadelta": "linear model, AdaDelta",
    "adam": "linear model, Adam",
    "adam_depth2": "depth-2 net, Adam",
    "adam_depth3": "depth-3 net, Adam",
}


@dataclasses.dataclass
class Config(common.LinearConfig):
    losses: tuple[float, ...] = cli.setting((4.0,), "p of the l_p losses, two panels each (the paper's Fig. 4: 4)")

    def validate(self):
        super().validate()
        self.check_losses()


def specs(config):
    return [
        CurveSpec(label, depth=depth, update=update, loss=p)
        for p in config.losses
        for label, depth, update in LEFT + RIGHT
    ]


def planned(config):
    """Every family the figure trains."""
    return specs(config)


def curve_claims(p, speeds, setting):
    """The figure's threshold claims for l_p (`criteria.figure4`) from `speeds`
    ({label: criteria.Speed}), each curve in its role (ROLES)."""
    return criteria.figure4(
        p, **{role: criteria.Curve(label, speeds[label]) for role, label in ROLES.items()}, setting=setting
    )


def speedup_pairs(config):
    """{claim: [(contender, baseline, p), ...]} of the speed-ups the figure measures: depth-3
    GD against each adaptive optimizer, Adam on each deeper net against Adam on the linear
    model."""
    gd, adaptive, adam = LEFT[0][0], [k for k, _, _ in LEFT[1:]], [k for k, _, _ in RIGHT]
    return {
        "depth-3 GD beats AdaGrad and AdaDelta on the linear model": [
            (gd, k, p) for p in config.losses for k in adaptive
        ],
        "depth accelerates Adam": [(k, adam[0], p) for p in config.losses for k in adam[1:]],
    }


def claims_of(config, measures):
    """The figure's claim rows from `measures` (`common.Measures`: a run's families, or
    its committed outputs), the speed-ups of `speedup_pairs` measured."""
    claims = []
    for p in config.losses:
        speeds = {label: measures.speed(label, p) for label in ROLES.values()}
        claims += curve_claims(p, speeds, config.setting_text())
    for p in config.losses:
        for claim, pairs in speedup_pairs(config).items():
            chosen = [measures.comparisons[f"{c} vs {b} (l{q:g})"] for c, b, q in pairs if q == p]
            claims.append(
                measures.speedup_claims(
                    "figure4", f"l{p:g}: {claim}{criteria.SPEED_UP}", chosen, factor=criteria.FASTER_FACTOR
                )
            )
    return claims


def run(config, workdir, job=None):
    def body(figure):
        figure.expect(planned(config))
        panels = []
        for spec in specs(config):
            figure.family(spec)
        for p in config.losses:
            panels += [
                figure.panel(f"l{p:g}: depth-3 GD vs adaptive optimizers", [(k, p) for k, _, _ in LEFT]),
                figure.panel(f"l{p:g}: Adam with and without depth", [(k, p) for k, _, _ in RIGHT]),
            ]
        _, summary = figure.write_speedups([pair for pairs in speedup_pairs(config).values() for pair in pairs])
        return figure.write(panels, claims_of(config, figure), {"speedup": summary})

    return common.run_figure("figure4", config, workdir, job, body)


def main(argv=None):
    return cli.main(run, Config, __doc__, argv, prog="python -m reproduce.figure4")


if __name__ == "__main__":
    main()
