"""Sensitivity of the Figure 3 and Figure 5 (left) verdicts to the settings the paper
leaves open: every preprocessing x seeds x iteration budgets (the default and 5x) x
convergence levels.

Each curve is trained once for the longest budget, with all seeds batched into the
learning-rate grid of one compiled loop; a shorter budget is its prefix (the same
trajectory, `CurveFamily.truncated`), so every budget costs one run, and other levels
cost no training. The claims are judged by the same criteria as the figures
(`reproduce.study.criteria`). For Figure 3 the l4 families are also tuned (`tfovp.tuning`,
on the median over seeds), and its speed-up claim is judged per seed at the longest
budget (the speed-ups need every step, which a prefix does not keep) twice: with both
rates tuned ("(speed-up)") and on the grid alone ("(speed-up, paper grid)"); these rows
judge the tightest level reached and are listed under the default --level. Writes
sensitivity.csv (one row per claim and setting) and sensitivity.md (in how many
settings each claim holds); a rerun replaces only the (figure, preprocessing, seed,
budget) settings it covers.

    python -m reproduce.sensitivity [--seeds 0,1,2,3,4] [--budget-factors 1,5]
        [--preprocessings standardize,minmax] [--figures 3,5] [--figure5-steps 100000]
        [--cluster ray [--address HOST:6379]]

With `--cluster ray` every curve family of every setting is one task on a Ray cluster
(`reproduce.study.cluster`); the outputs are those of the single-machine run.
"""

import dataclasses
import pathlib
import time

from reproduce import cli, common, figure3, figure5
from reproduce.study import criteria, findings, outputs
from reproduce.study.cluster import run_units
from reproduce.study.progress import job_scope, sweep_work
from reproduce.study.provenance import digest
from reproduce.study.runs import FamilyRunner
from reproduce.study.store import RecordStore
from tfovp import families
from tfovp.datasets import PRESETS
from tfovp.families import CurveFamily, CurveSpec
from tfovp.files import locked
from tfovp.problem import Problem

FIGURES = (3, 5)
SETTING = ["figure", "preprocessing", "seed", "budget"]  # what one row's verdict depends on, besides the level


@dataclasses.dataclass
class Config(cli.ClusterConfig, common.StudyConfig):
    preprocessings: tuple[str, ...] = cli.setting(
        tuple(PRESETS), "feature/target scalings compared (comma-separated: " + ", ".join(PRESETS) + ")"
    )
    seeds: tuple[int, ...] = cli.setting((0, 1, 2, 3, 4), "initialization seeds (>= 0), batched with the grid")
    budget_factors: tuple[float, ...] = cli.setting((1.0, 5.0), "budgets as multiples of each figure's (> 0)")
    figures: tuple[int, ...] = cli.setting(FIGURES, "whose claims to test: 3 and/or 5")
    figure3_steps: int = cli.setting(20_000, "Figure 3's budget: iterations per curve")
    figure5_steps: int = cli.setting(100_000, "Figure 5's budget (the paper's 100K)")
    extra_levels: tuple[float, ...] = cli.setting(
        (0.1, 0.05), "further convergence levels in (0, 1) to judge at (no retraining)"
    )

    QUICK = {
        "figure3_steps": 200,
        "figure5_steps": 200,
        "seeds": (0, 1),
        "lrs": (1e-3, 1e-2, 1e-1),
        "preprocessings": ("standardize", "minmax"),
        "rho": 2.0,
    }

    def validate(self):
        super().validate()
        cli.check_values("preprocessings", self.preprocessings, lambda p: p in PRESETS, ", ".join(PRESETS))
        cli.check_values("seeds", self.seeds, lambda s: s >= 0, "integers >= 0")
        cli.check_values("budget-factors", self.budget_factors, lambda f: f > 0, "numbers > 0")
        cli.check_values("figures", self.figures, lambda f: f in FIGURES, "3 and/or 5")
        self.check_steps("figure3-steps", self.figure3_steps)
        self.check_steps("figure5-steps", self.figure5_steps)
        cli.check_values("extra-levels", self.extra_levels, lambda v: 0 < v < 1, "numbers in (0, 1)")
        self.check_cluster()

    def budget(self, figure):
        return self.figure3_steps if figure == 3 else self.figure5_steps


def specs(figure):
    if figure == 3:
        return [CurveSpec(figure3.label(n), depth=n, loss=p) for p in (2.0, 4.0) for n in (1, 2, 3)]
    return figure5.specs(4.0)


def judge(figure, families, budget, seed, level, setting):
    """The figure's claims for one seed, from its families truncated to `budget`, and the
    curves that diverged at every learning rate (no evidence about their speed)."""
    summaries = {spec: family.truncated(budget).summary(level, seed) for spec, family in families.items()}
    diverged = "; ".join(f"{spec.label} (l{spec.loss:g})" for spec, s in summaries.items() if s.all_diverged)
    if figure == 3:
        speeds = {(spec.depth, spec.loss): criteria.Speed.of(s) for spec, s in summaries.items()}
        return criteria.figure3(speeds, setting), diverged
    return figure5.left_claims(4.0, {spec.label: s for spec, s in summaries.items()}, budget, setting), diverged


def runner(config, problem, figure, workdir, job):
    """A FamilyRunner for one preprocessing and figure: every seed, the longest budget."""
    longest = int(config.budget(figure) * max(config.budget_factors))
    folder = (
        f"{config.dataset}-{problem.preprocessing}-"
        + digest({"lrs": config.lrs, "loss_reduction": config.loss_reduction, "dtype": config.dtype, "steps": longest})
        + f"-f{families.FORMAT}"
    )
    store = RecordStore(pathlib.Path(workdir) / ".curves" / "sensitivity" / folder, CurveFamily.from_json)
    return FamilyRunner(
        problem,
        store,
        steps=longest,
        grid=config.lrs,
        seed=config.seeds[0],
        level=config.level,
        dtype=config.dtype,
        rho=config.tuning_ratio,
        resume=config.resume,
        job=job,
    )


def tuned(figure, spec):
    """Whether the study tunes a family: Figure 3's l4 curves (its speed-up claim)."""
    return figure == 3 and spec.loss == 4


SPEEDUP_CLAIM = "l4: deeper is much faster (speed-up)"


def speedup_claims(families, budget, seed, setting):
    """Figure 3's l4 speed-up claim for one seed, with both rates tuned and on the grid
    alone, at the full budget (None where the l4 families were not tuned)."""
    tuned = {spec.depth: f.of_seed(seed) for spec, f in families.items() if spec.loss == 4 and f.is_tuned}
    if 1 not in tuned:
        return []
    comparisons = [
        criteria.compare(figure3.label(n), f, figure3.label(1), tuned[1], budget)
        for n, f in sorted(tuned.items())
        if n > 1
    ]
    rows = []
    for claim, chosen in (
        (SPEEDUP_CLAIM, comparisons),
        (f"{SPEEDUP_CLAIM[:-1]}, paper grid)", [c.on_grid() for c in comparisons]),
    ):
        rows.append(criteria.speedup_claim("figure3", claim, chosen, criteria.FASTER_FACTOR, setting))
    return rows


def verdict_rows(config, figure, families, preprocessing):
    """One row per claim, level, budget and seed."""
    rows = []
    longest = int(config.budget(figure) * max(config.budget_factors))
    for level in (config.level, *config.extra_levels):
        for factor in config.budget_factors:
            budget = int(config.budget(figure) * factor)
            for seed in config.seeds:
                setting = f"{preprocessing}, seed {seed}, {budget:,} it, level {level:g}"
                claims, diverged = judge(figure, families, budget, seed, level, setting)
                if figure == 3 and budget == longest and level == config.level:
                    claims += speedup_claims(families, budget, seed, setting)
                for claim in claims:
                    rows.append(
                        {
                            "figure": claim.figure,
                            "claim": claim.claim,
                            "level": level,
                            "preprocessing": preprocessing,
                            "seed": seed,
                            "budget": budget,
                            "budget_factor": factor,
                            "verdict": claim.verdict,
                            "measured": claim.measured,
                            "all_rates_diverged": diverged,
                        }
                    )
    return rows


def planned_work(config):
    """The work of every family the study trains (for the progress bar)."""
    copies = len(config.lrs) * len(config.seeds)
    steps = {f: int(config.budget(f) * max(config.budget_factors)) for f in config.figures}
    tuning = config.tuning_ratio is not None
    return [
        sweep_work(copies, steps[f], spec.loss, tuning and tuned(f, spec))
        for _ in config.preprocessings
        for f in config.figures
        for spec in specs(f)
    ]


def run(config, workdir, job=None):
    with job_scope(job, "sensitivity") as job:
        started = time.time()
        work = planned_work(config)
        job.expect(len(work), sum(work))
        rows, training = [], {}
        runners = {
            (preprocessing, figure): runner(config, problem, figure, workdir, job)
            for preprocessing in config.preprocessings
            for problem in [Problem.load(config.dataset, preprocessing, config.loss_reduction, config.data_dir)]
            for figure in config.figures
        }
        if config.cluster_target() is not None:  # every family of every setting at once
            units = [
                u
                for (_, f), r in runners.items()
                for spec in specs(f)
                for u in r.units([spec], config.seeds, tune=tuned(f, spec))
            ]
            run_units(units, config.cluster_target(), job)
        for (preprocessing, figure), curves in runners.items():
            families = {spec: curves.family(spec, config.seeds, tune=tuned(figure, spec)) for spec in specs(figure)}
            name = f"figure{figure}"
            training[name] = training.get(name, 0.0) + sum(f.training_seconds for f in families.values())
            rows += verdict_rows(config, figure, families, preprocessing)
        write_tables(config, workdir, rows, training, started)
        return {"elapsed_seconds": round(time.time() - started, 1), "rows": len(rows)}


def write_tables(config, workdir, rows, training, started):
    """Merge `rows` into sensitivity.csv (replacing the settings they cover) and
    regenerate sensitivity.md."""
    import pandas as pd

    elapsed = round(time.time() - started, 1)
    frame = pd.DataFrame(rows).assign(
        elapsed_seconds=elapsed,
        loss_reduction=config.loss_reduction,
        dtype=config.dtype,
        started=time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started)),
    )
    if not frame.empty:  # seconds spent training the curves, also when they were resumed
        frame["training_seconds"] = frame["figure"].map(lambda f: round(training.get(f, 0.0), 1))
    path = pathlib.Path(workdir) / "sensitivity.csv"
    with locked(path):  # two studies sharing --out keep each other's rows
        frame = _merge(frame, path)
        outputs.write_csv(path, frame, float_format=None)
        findings.write_page(pathlib.Path(workdir) / "sensitivity.md", *_markdown(frame))


def _merge(frame, path):
    """Keep the earlier rows of every setting not rerun now, so that figures, budgets or
    seeds can be studied in separate runs; a rerun setting replaces all its rows."""
    import pandas as pd

    if frame.empty or not path.is_file():
        return frame
    previous = pd.read_csv(path)
    rerun = set(frame[SETTING].itertuples(index=False, name=None))
    previous = previous[[key not in rerun for key in previous[SETTING].itertuples(index=False, name=None)]]
    return pd.concat([previous, frame], ignore_index=True)


def _training_seconds(group):
    """Training time of one figure's rows, summed over the invocations that wrote them."""
    import pandas as pd

    column = "training_seconds" if "training_seconds" in group else "elapsed_seconds"
    invocations = group["started"].fillna("") if "started" in group else pd.Series("", index=group.index)
    return float(group.groupby(invocations)[column].first().sum())


def _markdown(frame):
    """sensitivity.md as (head, generated body); what the study shows is kept between
    them (`reproduce.study.findings`)."""
    head = (
        "# Sensitivity of the verdicts to the settings the paper leaves open\n\n"
        "What the study shows is written by hand between the findings markers; the rest is generated by "
        "`python -m reproduce.sensitivity` (rows: sensitivity.csv)."
    )
    lines = ["Settings covered:", ""]
    for figure, group in frame.groupby("figure", sort=True) if not frame.empty else []:
        lines.append(
            f"- {figure}: preprocessings {', '.join(dict.fromkeys(group['preprocessing']))}; seeds "
            f"{sorted(set(int(s) for s in group['seed']))}; budgets {sorted(set(int(b) for b in group['budget']))} "
            f"iterations; levels {sorted(set(float(v) for v in group['level']))}; loss "
            f"{group['loss_reduction'].iloc[0]} over "
            f"examples; {group['dtype'].iloc[0]}; training time of the curves "
            f"{_training_seconds(group):,.0f} s"
        )
    lines.append("")
    lines += _tables(frame) if not frame.empty else ["No rows."]
    return head, "\n".join(lines) + "\n"


def _tables(frame):
    lines = [
        "## Per claim and convergence level",
        "",
        "| claim | level | PASS | FAIL | INCONCLUSIVE | settings |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for (claim, level), group in frame.groupby(["claim", "level"], sort=False):
        counts = group["verdict"].value_counts()
        lines.append(
            f"| {claim} | {level:g} | {counts.get('PASS', 0)} | {counts.get('FAIL', 0)} | "
            f"{counts.get('INCONCLUSIVE', 0)} | {len(group)} |"
        )
    lines += [
        "",
        "## Per claim, level, preprocessing and budget",
        "",
        "Verdicts per seed in seed order (P = PASS, F = FAIL, I = INCONCLUSIVE).",
        "",
    ]
    table = frame.assign(passed=frame["verdict"] == "PASS").groupby(
        ["claim", "level", "preprocessing", "budget"], sort=False
    )
    lines += ["| claim | level | preprocessing | budget | PASS / seeds | verdicts |", "|---|---:|---|---:|---:|---|"]
    for (claim, level, preprocessing, budget), group in table:
        lines.append(
            f"| {claim} | {level:g} | {preprocessing} | {budget:,} | {int(group['passed'].sum())} / "
            f"{len(group)} | {' '.join(v[0] for v in group['verdict'])} |"
        )
    return lines


def main(argv=None):
    return cli.main(run, Config, __doc__, argv, prog="python -m reproduce.sensitivity")


if __name__ == "__main__":
    main()
