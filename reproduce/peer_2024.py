"""The 2024 student reproduction (PAPER Sec. 6; ../shared/seeds/002) side by side with the
paper: its setup, then each of its differences from the paper switched back one at a
time, on Ethanol and Abalone, five seeds, judged in its own measure.

The report trains linear nets of depth 1, 2 and 3 by full-batch gradient descent on the
mean squared error, with a bias on every layer, random init, an 80/20 split, on Ethanol
and on Abalone with 8 attributes, and keeps "the run with the best training loss at the
last epoch" of the grid {1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 1e-2}. Where it is silent
this module chooses, says so, and makes it a flag: 5,000 steps (--steps), hidden widths
1, 10 and 100 (--widths), random init N(0, 0.02^2) (PAPER Sec. 6; --init-std) with zero
biases (--bias-std), features and target standardized with the training rows'
statistics (--preprocessing), the split drawn with seed 0, sex coded F = 0, I = 1, M = 2
(`tfovp.datasets.load_abalone8`), "near zero" = the paper's N(0, 0.01^2) and "near
identity" = semi-orthogonal factors (Keras' Orthogonal). The l2 loss here is half the
report's MSE, so the report's rate eta is 2 eta here: the grid is doubled.

Setups (one column each): the student's; without the bias; with the paper's init
N(0, 0.01^2) instead of 0.02; width 1 only (the paper's); rates tuned from the student's
grid (`tfovp.tuning`, rho 1.2: its top, 0.01, is extended); the l4 loss. The findings
(`reproduce.study.criteria`, "student: ..."; criteria committed before the run) are judged
in every setup: the linear model consistently better on Ethanol, deeper nets
consistently better on Abalone, width mattering, run-to-run variation with random init,
less variation and faster near-identity nets with the special inits, and still no clear
speed-up of depth with them. The student setup's rows go to claims.json; every setup's
to peer_2024.csv and the findings table peer_2024.md.

    python -m reproduce.peer_2024 [--quick] [--datasets ethanol,abalone8] [--seeds 0,1,2,3,4]
        [--steps 5000] [--widths 1,10,100] [--resume]
"""

import dataclasses
import math
import pathlib
import time

import numpy as np

from reproduce import cli
from reproduce.study import criteria, findings, outputs
from reproduce.study.claims import ClaimsFile
from reproduce.study.progress import job_scope, sweep_work
from reproduce.study.provenance import RunSummary, digest
from reproduce.study.runs import FamilyRunner
from reproduce.study.store import RecordStore
from tfovp.families import CurveFamily, CurveSpec
from tfovp.tuning import RHO

STUDENT_GRID = (1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 1e-2)  # the report's, for its MSE
MSE_RATE_FACTOR = 2.0  # MSE = 2 x (1/2) mean squared error: the same steps with twice the rate
DATASETS = ("ethanol", "abalone8")
INITS = ("random", "near_zero", "orthogonal")
SETUPS = ("student's", "no bias", "paper's init std", "width 1", "tuned rates", "l4 loss")
SETUP_FLAGS = dict(zip(("student", "no-bias", "paper-init", "width-1", "tuned", "l4"), SETUPS))
INIT_FINDINGS = 3  # the last three rows of criteria.peer_inits


@dataclasses.dataclass
class Config:
    datasets: tuple[str, ...] = cli.setting(DATASETS, "data sets (ethanol, abalone8, abalone)")
    setups: tuple[str, ...] = cli.setting(
        tuple(SETUP_FLAGS), "setups (columns): " + ", ".join(f"{k} ({v})" for k, v in SETUP_FLAGS.items())
    )
    seeds: tuple[int, ...] = cli.setting((0, 1, 2, 3, 4), "initialization seeds (>= 0)")
    steps: int = cli.setting(5000, "full-batch GD steps (>= 1; the report does not say)")
    widths: tuple[int, ...] = cli.setting((1, 10, 100), "hidden widths of the deep nets (>= 1; not in the report)")
    init_std: float = cli.setting(0.02, "std of the random init (> 0; PAPER Sec. 6: 0.02)")
    near_zero_std: float = cli.setting(0.01, "std of the 'near zero' init (> 0; the paper's 0.01)")
    bias_std: float = cli.setting(0.0, "std of the biases' initial draw (>= 0; 0: zeros; not in the report)")
    test_fraction: float = cli.setting(0.2, "rows held out, never trained on (the report's 80/20 split)")
    preprocessing: str = cli.setting("standardize", "scaling fitted on the training rows (not in the report)")
    rho: float = cli.setting(RHO, "the tuned setup's precision (> 1)")
    data_dir: str | None = cli.setting(None, "folder with the datasets, searched before $TFOVP_DATA_DIR")
    resume: bool = cli.setting(False, "reuse families finished by an earlier (interrupted) run")
    quick: bool = cli.setting(False, "smoke run: {preset} (flags given win)")

    QUICK = {"seeds": (0, 1), "steps": 100, "widths": (1,), "datasets": ("abalone8",), "setups": ("student", "tuned")}

    def validate(self):
        from tfovp.datasets import REGRESSION_LOADERS
        from tfovp.datasets.preprocessing import parse

        cli.check_values("datasets", self.datasets, lambda d: d in REGRESSION_LOADERS, ", ".join(REGRESSION_LOADERS))
        cli.check_values("setups", self.setups, lambda s: s in SETUP_FLAGS, ", ".join(SETUP_FLAGS))
        cli.check_values("seeds", self.seeds, lambda s: s >= 0, "integers >= 0")
        cli.check(len(self.seeds) >= 2, f"--seeds {self.seeds}: expected two or more (run-to-run variation)")
        cli.check(1 <= self.steps <= cli.MAX_STEPS, f"--steps {self.steps}: expected an integer >= 1")
        cli.check_values("widths", self.widths, lambda w: w >= 1, "integers >= 1")
        for name in ("init_std", "near_zero_std"):
            value = getattr(self, name)
            cli.check(math.isfinite(value) and value > 0, f"--{name.replace('_', '-')} {value:g}: expected > 0")
        cli.check(self.bias_std >= 0, f"--bias-std {self.bias_std:g}: expected a number >= 0")
        cli.check(0 < self.test_fraction < 1, f"--test-fraction {self.test_fraction:g}: expected a number in (0, 1)")
        cli.check(math.isfinite(self.rho) and self.rho > 1, f"--rho {self.rho:g}: expected a ratio > 1")
        try:
            parse(self.preprocessing)
        except ValueError as error:
            raise ValueError(f"--preprocessing {self.preprocessing}: {error}") from None
        cli.check(
            self.data_dir is None or pathlib.Path(self.data_dir).is_dir(), f"--data-dir {self.data_dir}: no such folder"
        )


@dataclasses.dataclass(frozen=True)
class Setup:
    """One column: the student's setup with one difference from the paper switched back."""

    name: str
    bias: bool = True
    random_std: float | None = None  # None: Config.init_std
    widths: tuple | None = None  # None: Config.widths
    tuned: bool = False
    p: float = 2.0

    def inits(self, config):
        """{init name: (initializer, std)} trained in this setup."""
        random = config.init_std if self.random_std is None else self.random_std
        return {"random": ("near_zero", random), "near_zero": ("near_zero", config.near_zero_std),
                "orthogonal": ("orthogonal", None)}  # fmt: skip

    def specs(self, config):
        """{(init, depth, width): CurveSpec}."""
        out = {}
        for init, (initializer, std) in self.inits(config).items():
            for depth, width in [(1, 1)] + [(d, w) for d in (2, 3) for w in (self.widths or config.widths)]:
                out[(init, depth, width)] = CurveSpec(
                    f"depth {depth}, width {width}, {init} init",
                    depth=depth,
                    hidden_widths=width,
                    initializer=initializer,
                    init_std=std,
                    loss=self.p,
                    bias=self.bias,
                    bias_std=config.bias_std if self.bias else 0.0,
                )
        return out


def setups(config):
    every = [
        Setup("student's"),
        Setup("no bias", bias=False),
        Setup("paper's init std", random_std=config.near_zero_std),
        Setup("width 1", widths=(1,)),
        Setup("tuned rates", tuned=True),
        Setup("l4 loss", p=4.0),
    ]
    chosen = {SETUP_FLAGS[name] for name in config.setups}
    return [setup for setup in every if setup.name in chosen]


def problem(name, config):
    """The training rows of a data set, preprocessed with their own statistics."""
    from tfovp.compare import split
    from tfovp.datasets import REGRESSION_LOADERS
    from tfovp.problem import Problem

    x, y = REGRESSION_LOADERS[name](data_dir=config.data_dir)
    (x_train, y_train), _ = split(x, y, config.test_fraction, 0, config.preprocessing)
    return Problem(x_train, y_train.reshape(-1, 1), name, f"{config.preprocessing}, 80 % of the rows", "mean")


def finals(family, tuned):
    """(seeds,) final training loss of the best rate per seed (the report's choice)."""
    family = family.with_tuned() if tuned else family
    out = []
    for seed in family.seed_list:
        columns = family.columns(seed)
        last = np.where(family.diverged[columns], np.inf, family.losses[-1, columns])
        out.append(float(np.min(np.where(np.isfinite(last), last, np.inf))))
    return np.asarray(out)


def judge(name, setup, runs):
    """The findings of the report on one data set in one setup."""
    text = f"{name}, setup: {setup.name}"
    rows = [
        criteria.peer_linear_better(runs, setting=text, figure="peer_2024")
        if name == "ethanol"
        else criteria.peer_deeper_better(runs, setting=text, figure="peer_2024"),
        criteria.peer_width_matters(runs, setting=text, figure="peer_2024"),
        criteria.peer_stochastic(runs, setting=text, figure="peer_2024"),
    ]
    if setup.name != "paper's init std":  # there the random init is the near-zero one: no contrast
        rows += criteria.peer_inits(runs, setting=text, figure="peer_2024")
    return rows


def run(config, workdir, job=None):
    with job_scope(job, "peer_2024") as job:
        started, out = time.time(), pathlib.Path(workdir)
        claims_file = ClaimsFile(out)
        claims_file.read()  # a corrupt shared file stops the run before any training
        grid = tuple(MSE_RATE_FACTOR * r for r in STUDENT_GRID)
        plans = [(name, setup) for name in config.datasets for setup in setups(config)]
        job.plan(
            "peer_2024",
            sum(len(s.specs(config)) for _, s in plans),
            sum(
                sweep_work(len(grid) * len(config.seeds), config.steps, s.p, s.tuned) * len(s.specs(config))
                for _, s in plans
            ),
        )
        rows, medians, training = [], {}, 0.0
        problems = {name: problem(name, config) for name in config.datasets}
        for name, setup in plans:
            job.write(f"{name}: {setup.name} setup")
            folder = digest({"dataset": name, "setup": dataclasses.asdict(setup), "config": dataclasses.asdict(config)})
            store = RecordStore(out / ".curves" / "peer_2024" / folder, CurveFamily.from_json)
            runner = FamilyRunner(
                problems[name], store, steps=config.steps, grid=grid, seed=config.seeds[0], level=0.2,
                rho=config.rho if setup.tuned else None, resume=config.resume, job=job,
            )  # fmt: skip
            families = {key: runner.family(spec, list(config.seeds)) for key, spec in setup.specs(config).items()}
            training += sum(f.training_seconds for f in families.values())
            runs = criteria.PeerRuns({key: finals(f, setup.tuned) for key, f in families.items()})
            medians[f"{name} / {setup.name}"] = {
                f"{init} depth {d} width {w}": float(np.median(v)) for (init, d, w), v in runs.finals.items()
            }
            rows += [(name, setup.name, claim) for claim in judge(name, setup, runs)]
        return _write(config, out, job, rows, medians, training, started, claims_file)


def _write(config, out, job, rows, medians, training, started, claims_file):
    """peer_2024.csv (every setup's verdicts), .md (the findings table), .json, and the
    student setup's rows in claims.json."""
    import pandas as pd

    table = pd.DataFrame(
        [
            {
                "dataset": n,
                "setup": s,
                "claim": c.claim,
                "verdict": c.verdict,
                "measured": c.measured,
                "criterion": c.criterion,
            }
            for n, s, c in rows
        ]  # fmt: skip
    )
    outputs.write_csv(out / "peer_2024.csv", table)

    findings.write_page(out / "peer_2024.md", *findings_table(table))
    claims_file.replace("peer_2024", [c for _, s, c in rows if s == "student's"], job.command)
    summary = RunSummary.now("peer_2024", job.command, config, started, training).to_json(
        grid=[MSE_RATE_FACTOR * r for r in STUDENT_GRID],
        median_final_losses=medians,
        claims=[dataclasses.asdict(c) for _, s, c in rows if s == "student's"],
    )
    outputs.write_json(out / "peer_2024.json", summary)
    return summary


def findings_table(table):
    """peer_2024.md as (head, generated body): one row per finding and data set, one
    column per setup, verdict and number; what the study shows is kept between them
    (`reproduce.study.findings`)."""
    head = (
        "# The 2024 student reproduction: each finding under its setup and with each difference switched back\n\n"
        "What the study shows is written by hand between the findings markers; the table is generated by "
        "`python -m reproduce.peer_2024` (rows: peer_2024.csv, with the criteria)."
    )
    lines = [
        "PASS: the student's finding reproduces in that setup.",
        "",
        "| finding | data | " + " | ".join(SETUPS) + " |",
        "|---|---|" + "---|" * len(SETUPS),
    ]
    for (claim, dataset), group in table.groupby(["claim", "dataset"], sort=False):
        cells = []
        for setup in SETUPS:
            found = group[group["setup"] == setup]
            cells.append(
                "–" if found.empty else f"**{found['verdict'].iloc[0]}** ({_short(found['measured'].iloc[0])})"
            )
        lines.append(f"| {claim.removeprefix('student: ')} | {dataset} | " + " | ".join(cells) + " |")
    return head, "\n".join(lines) + "\n"


def _short(measured, limit=90):
    return measured if len(measured) <= limit else measured[: limit - 3] + "..."


def main(argv=None):
    return cli.main(run, Config, __doc__, argv, prog="python -m reproduce.peer_2024")


if __name__ == "__main__":
    main()
