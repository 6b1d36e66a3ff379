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
10 epochs, for the tutorial's seed 66478 (the committed panel: `--mnist-seeds 66478,1,2`),
and with
`--mnist-variants` the factored model with the L2 term elsewhere and the preconditioned
original; it records the loss's cross-entropy and L2 parts and the kernel norms
(figure5_mnist*.png). About 8 and 11.5 minutes per seed for the two models on this
project's 2 CPU cores (results/README.md). `--panels left` skips it (and is what
`--quick` does unless `--panels` is given); `--resume` keeps finished runs and continues
an interrupted one from its last checkpoint. A run of one panel keeps the other panel's
claim rows, and a run of the left panel alone redraws the right one from the MNIST
outputs already in the folder (its JSON summary and first-seed CSVs). With `--cluster
ray` every curve family and MNIST run is one task on a Ray cluster
(`reproduce.study.cluster`; MNIST runs there take a GPU where there is one).

    python -m reproduce.figure5 [--quick] [--steps N] [--losses 2] [--panels left] [--resume]
        [--cluster ray [--address HOST:6379]] ...
"""

import dataclasses

from mnist_tutorial.config import L2_CHOICES, SEED
from reproduce import cli, common, mnist_panel
from reproduce.study import criteria
from reproduce.study.cluster import run_units
from tfovp.families import CurveSpec

CURVES = [
    ("linear model (depth 1)", 1, "near_zero"),
    ("depth-4 net, near-zero init", 4, "near_zero"),
    ("depth-8 net, near-zero init", 8, "near_zero"),
    ("depth-4 net, identity init", 4, "identity"),
    ("depth-8 net, identity init", 8, "identity"),
]
PANELS = ("left", "right")
# The role of each curve but the linear model in the left panel's claims (`criteria.figure5`).
ROLES = {"late": CURVES[1][0], "stuck": CURVES[2][0], "identity_shallow": CURVES[3][0], "identity_deep": CURVES[4][0]}


@dataclasses.dataclass
class Config(cli.ClusterConfig, common.LinearConfig):
    steps: int = cli.setting(100_000, "full-batch GD iterations per curve of the left panel (the paper's 100K)")
    losses: tuple[float, ...] = cli.setting((4.0,), "p of the l_p losses of the left panel (not stated; l4 chosen)")
    panels: str = cli.setting(
        "left,right", "which panels: left (linear nets), right (MNIST tutorial) or both, comma-separated"
    )
    mnist_epochs: float = cli.setting(10.0, "right panel: epochs per model (> 0; the tutorial's 10)")
    mnist_steps: int = cli.setting(0, "right panel: stop after this many steps instead (>= 0; 0: use the epochs)")
    mnist_seeds: tuple[int, ...] = cli.setting(
        (SEED,),
        "right panel: graph seeds of both models (>= 0; the tutorial's 66478 first; the committed panel: 66478,1,2)",
    )
    mnist_variants: bool = cli.setting(
        False, "right panel: also the other --l2-on choices and the preconditioned original, first seed only"
    )
    mnist_convs: bool = cli.setting(
        False,
        "right panel: also the overparameterized model with its convolutions factored (every seed; not in the "
        "paper), judged against the dense-only factoring and the original",
    )
    mnist_reuse_outputs: bool = cli.setting(
        False,
        "right panel: rebuild the runs whose outputs (per-step CSVs, figure5.json) an earlier panel wrote to --out "
        "instead of training them (e.g. add --mnist-convs to the committed panel)",
    )
    l2_on: str = cli.setting(
        "product", "right panel: the L2 term on the product kernels or on every factor", L2_CHOICES
    )
    self_test: bool = cli.setting(False, "right panel on the tutorial's fake data (a smoke test)")

    QUICK = {"steps": 600, "panels": "left", "rho": 2.0}  # --quick: the MNIST panel only if asked for

    def validate(self):
        super().validate()
        self.check_losses()
        cli.check(
            self.panel_list() and set(self.panel_list()) <= set(PANELS),
            f"--panels {self.panels}: expected left, right or left,right",
        )
        cli.check(self.mnist_epochs > 0, f"--mnist-epochs {self.mnist_epochs:g}: expected a number > 0")
        cli.check(self.mnist_steps >= 0, f"--mnist-steps {self.mnist_steps}: expected an integer >= 0")
        cli.check_values("mnist-seeds", self.mnist_seeds, lambda seed: seed >= 0, "integers >= 0")
        cli.check(self.l2_on in L2_CHOICES, f"--l2-on {self.l2_on}: expected one of {', '.join(L2_CHOICES)}")
        self.check_cluster()

    def panel_list(self):
        return [p.strip() for p in self.panels.split(",") if p.strip()]


def specs(p):
    return [CurveSpec(label, depth=depth, initializer=init, loss=p) for label, depth, init in CURVES]


def left_claims(p, summaries, budget, setting=""):
    """The left panel's claims from {curve label: convergence.SeedSummary}."""
    roles = {role: summaries[label] for role, label in ROLES.items()}
    return criteria.figure5(p, **roles, budget=budget, setting=setting)


def speedup_pairs(config):
    """(contender, baseline, p) of every speed-up of the left panel: each deeper net against
    the linear model, and identity init's depth 8 against its depth 4."""
    linear, deep = CURVES[0][0], [label for label, _, _ in CURVES[1:]]
    pairs = [(label, linear, p) for p in config.losses for label in deep]
    return pairs + [(CURVES[4][0], CURVES[3][0], p) for p in config.losses]


def claims_of(config, measures):
    """The left panel's claim rows from `measures` (`common.Measures`: a run's families,
    or its committed outputs), the speed-ups of `speedup_pairs` measured."""
    claims = []
    for p in config.losses:
        summaries = {label: measures.summary(label, p) for label, _, _ in CURVES}
        claims += left_claims(p, summaries, config.steps, config.setting_text())
    for p in config.losses:
        deeper = [measures.comparisons[f"{CURVES[4][0]} vs {CURVES[3][0]} (l{p:g})"]]
        claim = f"l{p:g}: identity init, deeper is faster{criteria.SPEED_UP}"
        claims.append(measures.speedup_claims("figure5", claim, deeper, factor=criteria.FASTER_FACTOR))
    return [dataclasses.replace(c, panel="left") for c in claims]


def planned(config):
    """Every curve family of the left panel (if it is run)."""
    return [spec for p in config.losses for spec in specs(p)] if "left" in config.panel_list() else []


def run(config, workdir, job=None):
    chosen = config.panel_list()

    def body(figure):
        if "left" in chosen:
            figure.expect(planned(config))
        if "right" in chosen:
            mnist_panel.expect(
                figure.job, "figure5-mnist", [c for runs in mnist_panel.configs(config).values() for c in runs]
            )
        if config.cluster_target() is not None:  # both panels' runs at once, then the figure below
            units = figure.runner.units(planned(config))
            units += mnist_panel.panel_units(config, workdir, figure.job) if "right" in chosen else []
            run_units(units, config.cluster_target(), figure.job)
        claims, panels, extra = [], [], {}
        for p in config.losses if "left" in chosen else ():
            for spec in specs(p):
                figure.family(spec)
        if "left" in chosen:
            _, extra["speedup"] = figure.write_speedups(speedup_pairs(config))
            claims += claims_of(config, figure)
            panels.append(
                figure.panel(
                    f"left: l{p:g} loss, GD, {config.steps:,} iterations", [(label, p) for label, _, _ in CURVES]
                )
            )
            if "right" in chosen:  # the left panel's figure and claims now: a stop during MNIST keeps them
                earlier = mnist_panel.earlier_panel(workdir, config.mnist_seeds[0])
                kept = {**extra, **({"mnist": earlier[1]} if earlier else {})}
                figure.write(panels + ([earlier[0]] if earlier else []), claims, kept, panels_run=["left"])
        if "right" in chosen:
            results = mnist_panel.train_all(config, workdir, figure.job)
            panels.append(mnist_panel.panel(results, config.mnist_seeds))
            mnist_panel.figures(results, workdir)
            budget = results["original"][0].steps
            seeds = ", ".join(str(s) for s in config.mnist_seeds)
            setting = f"MNIST tutorial, {budget:,} steps, L2 on {config.l2_on}, seeds {seeds}"
            claims += [dataclasses.replace(c, panel="right") for c in mnist_panel.claims(results, setting)]
            extra["mnist"] = mnist_panel.summary(results, list(config.mnist_seeds))
        elif (earlier := mnist_panel.earlier_panel(workdir, config.mnist_seeds[0])) is not None:
            panels.append(earlier[0])  # the right panel of the run that wrote this folder's MNIST outputs
            extra["mnist"] = earlier[1]
        return figure.write(panels, claims, extra, panels_run=chosen)

    return common.run_figure("figure5", config, workdir, job, body)


def main(argv=None):
    return cli.main(run, Config, __doc__, argv, prog="python -m reproduce.figure5")


if __name__ == "__main__":
    main()
