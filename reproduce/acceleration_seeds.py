"""Is the map's verdict the seed's or the setting's? The map's deciding settings
(`reproduce.acceleration`) over initialization seeds, the data fixed.

Each seed is a run of the map (`reproduce.acceleration --seed k`): seed 0 is the map's
own run, OUT/acceleration-TAG.json (trained there if it is missing or was run with other
settings), seed k > 0 is OUT/seeds/acceleration-TAG-seedk.json. Nothing is judged in a
run; this module reads them.

Criterion (committed 2026-12-07, before the seeds' runs): per setting and depth n, each
seed's tuned comparison with the linear model is classified by the map's tally rule
(`reproduce.report.at_least`): S at least FACTOR at some level is "established" when S /
rho clears it (S exact or a lower bound), "within noise" when only S * rho does, else
"no". Over the seeds (at least `thresholds.MIN_SEEDS`) the seed rule: established for
the setting only if every seed establishes it, "no" only if every seed says no, else it
"varies with the seed". Both factors of the map, 2 and 10. Per level, the median S
over the seeds with its min-max range where every seed has an exact S (the per-level
oracle the map's tally reads, and one rate per model beside it).

Beside it (added 2026-12-07 after the first two studies had run; it replaces nothing):
the same classification and seed rule on the one-rate protocol's S (each model trained
at the one rate chosen at the tightest level, `criteria.OneRate`), the protocol the
paper's claims are judged on.

    python -m reproduce.acceleration_seeds [--settings ...] [--seeds 0,1,2,3,4]
        [--steps 100000] [--tag deciding-1e5] [--out results] [--resume]

Writes OUT/acceleration-seeds-TAG.{csv,json,md} (every S per setting, depth, level and
seed; the classification; the page).
"""

import dataclasses
import json
import math
import pathlib
import time

import numpy as np

from reproduce import acceleration, cli
from reproduce.study.criteria.thresholds import MIN_SEEDS
from reproduce.study.progress import job_scope
from reproduce.study.runs import PAPER_GRID
from tfovp.tuning import RHO

# The map's settings whose 10^5 verdicts decided its text (results/acceleration-deciding-1e5.md).
DECIDING = ("synthetic-2dec", "synthetic-4dec", "noisy-0dec", "noisy-2dec", "noisy-4dec", "std0.1", "identity")
FACTORS = (2.0, 10.0)
PAGE_LEVELS = (0.1, 0.01, 0.001, 0.0001)  # the map's three summary levels and the deciding settings' tightest
SEEDS_FOLDER = "seeds"
EVERY, NONE, VARIES = "in every seed", "in no seed", "varies with the seed"


@dataclasses.dataclass
class Config(cli.ClusterConfig):
    settings: tuple[str, ...] = cli.setting(DECIDING, "map settings (comma-separated names of reproduce.acceleration)")
    seeds: tuple[int, ...] = cli.setting((0, 1, 2, 3, 4), "initialization seeds (>= 0, at least 5 distinct)")
    steps: int = cli.setting(100_000, "iterations per family (>= 1)")
    lrs: tuple[float, ...] = cli.setting(PAPER_GRID, "learning-rate grid (> 0)")
    rho: float = cli.setting(RHO, "tune every family's learning rate to within this ratio (> 1; tfovp.tuning)")
    tag: str = cli.setting("deciding-1e5", "the map run of seed 0 is OUT/acceleration-TAG.json")
    data_dir: str | None = cli.setting(None, "folder with the datasets, searched before $TFOVP_DATA_DIR")
    resume: bool = cli.setting(False, "reuse every seed's run (and families) stored with the same settings")
    quick: bool = cli.setting(False, "smoke run in seconds: {preset} (flags given win)")

    QUICK = {"settings": ("synthetic-2dec",), "seeds": (0, 1), "steps": 100, "lrs": (1e-2, 1e-1), "rho": 2.0}

    def validate(self):
        cli.check_values("settings", self.settings, lambda s: s in acceleration.SETTINGS, "names of the map")
        cli.check_values("seeds", self.seeds, lambda s: isinstance(s, int) and s >= 0, "integers >= 0")
        cli.check(len(set(self.seeds)) == len(self.seeds), f"--seeds {self.seeds}: a seed given twice")
        cli.check(
            self.quick or len(self.seeds) >= MIN_SEEDS,
            f"--seeds {','.join(map(str, self.seeds))}: expected at least {MIN_SEEDS} seeds (the seed rule's)",
        )
        acceleration.check_run_flags(self)

    @property
    def name(self):
        return f"acceleration-seeds-{self.tag}"


def seed_plan(config, seed):
    """(the map's Config of `seed`, the folder it writes to, relative to OUT)."""
    shared = {f.name: getattr(config, f.name) for f in dataclasses.fields(cli.ClusterConfig)}
    plan = acceleration.Config(
        **shared,
        settings=tuple(config.settings),
        steps=config.steps,
        lrs=tuple(config.lrs),
        seed=seed,
        rho=config.rho,
        tag=config.tag if seed == 0 else f"{config.tag}-seed{seed}",
        data_dir=config.data_dir,
        resume=config.resume,
    )
    return plan, "." if seed == 0 else SEEDS_FOLDER


def stored_run(path, plan):
    """The map JSON at `path` if it measured what `plan` asks for (settings, budget, grid,
    seed, rho: what is computed), else None."""
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    wanted = json.loads(json.dumps(dataclasses.asdict(plan)))
    keys = ("settings", "steps", "lrs", "seed", "rho", "no_tune")
    return data if all(data["config"].get(k) == wanted[k] for k in keys) else None


def run(config, workdir, job=None):
    out, started = pathlib.Path(workdir), time.time()
    runs, training = {}, 0.0
    with job_scope(job, config.name) as job:
        for seed in config.seeds:
            plan, folder = seed_plan(config, seed)
            where = out / folder
            kept = stored_run(where / f"{plan.name}.json", plan) if config.resume or seed == 0 else None
            if kept is None:
                where.mkdir(parents=True, exist_ok=True)
                acceleration.run(plan, where, job)
                kept = json.loads((where / f"{plan.name}.json").read_text())  # as stored (JSON keys)
                training += kept.get("training_seconds") or 0.0
            else:
                job.write(f"seed {seed}: kept {where / plan.name}.json")
            runs[seed] = kept
        return write(out, config, runs, job, started, training)


@dataclasses.dataclass(frozen=True)
class SettingOverSeeds:
    """One setting and depth over the seeds: each seed's class per factor, the verdict
    over the seeds, and the S per seed at every level."""

    setting: str
    depth: int
    per_seed: dict  # factor -> [class of each seed]
    speedups: dict  # seed -> Comparison
    one_rate_per_seed: dict | None = None  # the same of the one-rate protocol (None: a seed has no record)

    @property
    def over_seeds(self):
        """factor -> EVERY / NONE / VARIES (`over_the_seeds` of each factor's classes)."""
        return {factor: over_the_seeds(classes) for factor, classes in self.per_seed.items()}

    @property
    def one_rate_over_seeds(self):
        """`over_seeds` of the one-rate protocol (None without its records)."""
        if self.one_rate_per_seed is None:
            return None
        return {factor: over_the_seeds(classes) for factor, classes in self.one_rate_per_seed.items()}


def over_the_seeds(classes):
    """The seed rule (`criteria.seeds.over_seeds`) on the classes of
    `reproduce.report.at_least`, one per seed, read as verdicts: established a PASS, no a
    FAIL, within noise undecided."""
    from reproduce.report import ESTABLISHED, NOT_REACHED
    from reproduce.study.claims import FAIL, INCONCLUSIVE, PASS
    from reproduce.study.criteria.seeds import over_seeds

    verdicts = {ESTABLISHED: PASS, NOT_REACHED: FAIL}
    holds = over_seeds(verdicts.get(c, INCONCLUSIVE) for c in classes)
    return {True: EVERY, False: NONE, None: VARIES}[holds]


def combine(runs, factors=FACTORS):
    """[SettingOverSeeds] of every setting and depth 2-4 of {seed: map JSON}."""
    from reproduce.report import at_least, tuned_comparison
    from reproduce.study.criteria import Comparison

    seeds = sorted(runs)
    found = []
    for name in runs[seeds[0]]["settings"]:
        for depth in (2, 3, 4):
            comparisons = {}
            for seed in seeds:
                record = tuned_comparison(runs[seed]["settings"][name], depth)
                if record is not None:
                    comparisons[seed] = Comparison.from_json(record)
            if len(comparisons) != len(seeds):
                continue  # a seed without a tuned comparison (every rate diverged): not classified
            per_seed = {f: [at_least(comparisons[s], f) for s in seeds] for f in factors}
            one_rate = {f: [at_least(comparisons[s], f, one_rate=True) for s in seeds] for f in factors}
            complete = all(c is not None for classes in one_rate.values() for c in classes)
            found.append(SettingOverSeeds(name, depth, per_seed, comparisons, one_rate if complete else None))
    return found


def spread(values):
    """(median, min, max) of exact speed-ups, or None unless every one is exact."""
    from tfovp.speedup import EXACT

    if not values or any(s is None or s.kind != EXACT for s in values):
        return None
    numbers = [s.value for s in values]
    return float(np.median(numbers)), min(numbers), max(numbers)


def rows(found):
    """The CSV: one row per setting, depth, seed and level, S of both protocols."""
    out = []
    for item in found:
        for seed, c in sorted(item.speedups.items()):
            for s, o in zip(c.speedups, c.one_rate_speedups):
                out.append(
                    {
                        "setting": item.setting,
                        "depth": item.depth,
                        "seed": seed,
                        "level": s.level,
                        "speedup": s.value,
                        "kind": s.kind,
                        "one_rate_speedup": None if o is None else o.value,
                        "one_rate_kind": None if o is None else o.kind,
                    }
                )
    return out


def write(out, config, runs, job, started, training):
    import pandas as pd

    from reproduce.study import outputs
    from reproduce.study.findings import write_page
    from reproduce.study.provenance import RunSummary

    found = combine(runs)
    outputs.write_csv(out / f"{config.name}.csv", pd.DataFrame(rows(found)))
    summary = RunSummary.now(config.name, job.command, config, started, training).to_json(
        runs={
            str(s): {"command": r["command"], "training_seconds": r.get("training_seconds")} for s, r in runs.items()
        },
        classes=[
            {
                "setting": f.setting,
                "depth": f.depth,
                **{f"at_least_{k:g}x_per_seed": f.per_seed[k] for k in FACTORS},
                **{f"at_least_{k:g}x": f.over_seeds[k] for k in FACTORS},
                **(
                    {}
                    if f.one_rate_per_seed is None
                    else {
                        **{f"one_rate_at_least_{k:g}x_per_seed": f.one_rate_per_seed[k] for k in FACTORS},
                        **{f"one_rate_at_least_{k:g}x": f.one_rate_over_seeds[k] for k in FACTORS},
                    }
                ),
            }
            for f in found
        ],
    )
    outputs.write_json(out / f"{config.name}.json", summary)
    write_page(out / f"{config.name}.md", page_head(summary, runs), page_body(found, sorted(runs)))
    job.write(f"wrote {out / config.name}.{{csv,json,md}}")
    return summary


def page_head(summary, runs):
    c = summary["config"]
    trained = sum(r.get("training_seconds") or 0.0 for r in runs.values())
    machine = summary["machine"]
    return (
        f"# The map's settings over initialization seeds ({c['tag']})\n\n"
        f"`{summary['command']}` · settings {', '.join(c['settings'])} · seeds {', '.join(map(str, c['seeds']))} "
        f"(initialization only; the data fixed) · {c['steps']:,} iterations, rates tuned to rho {c['rho']:g} per "
        f"seed · {trained:,.0f} s of training over the seeds' runs · {machine['cpu_model']}, "
        f"{machine['cpu_count']} cores\n\n"
        "Per seed, depth n's tuned speed-up over the linear model is at least the factor at some level "
        "**established** (S / ρ clears it), only **within noise** (S · ρ does), or **no**: the map's tally rule. "
        "Over the seeds it counts for the setting only if every seed establishes it, is absent only if no seed "
        "reaches it even within noise, and otherwise varies with the seed (the seed rule, "
        "`reproduce/study/criteria/thresholds.py` MIN_SEEDS; criterion committed before the runs), on the per-level "
        "oracle's S (each level its own best rate). Beside it, added after the runs and replacing nothing, the same "
        "on one rate per model (each model's one run at the rate chosen at the tightest level, the protocol the "
        "claims are judged on). Seed 0 is the map's own run; each seed's run is under `seeds/`. Written by "
        "`python -m reproduce.acceleration_seeds`.\n"
    )


def _cell(values):
    found = spread(values)
    return "–" if found is None else f"{found[0]:.3g} ({found[1]:.3g}–{found[2]:.3g})"


def page_body(found, seeds):
    short = {"established": "E", "within noise": "n", "no": "–"}
    levels = PAGE_LEVELS
    lines = [
        "## Per setting and depth",
        "",
        "Per seed (" + ", ".join(map(str, seeds)) + "): E established, n within noise, – no. S: median over the "
        "seeds (min–max), per-level oracle, where every seed has an exact S.",
        "",
        "| setting | depth | ≥ 2× per seed | ≥ 2× over the seeds | ≥ 10× over the seeds | one rate: ≥ 2× per seed "
        "| one rate: ≥ 2× over the seeds | one rate: ≥ 10× over the seeds | "
        + " | ".join(f"S({e:g})" for e in levels)
        + " |",
        "|---|---:|---|---|---|---|---|---|" + "---:|" * len(levels),
    ]
    for f in found:
        cells = []
        for e in levels:
            at = [next((s for s in c.speedups if math.isclose(s.level, e)), None) for c in f.speedups.values()]
            cells.append(_cell(at))
        per = " ".join(short[c] for c in f.per_seed[2.0])
        one = f.one_rate_over_seeds
        one_cells = (
            "– | – | –"
            if one is None
            else f"{' '.join(short[c] for c in f.one_rate_per_seed[2.0])} | {one[2.0]} | {one[10.0]}"
        )
        lines.append(
            f"| {f.setting} | {f.depth} | {per} | {f.over_seeds[2.0]} | {f.over_seeds[10.0]} | {one_cells} | "
            + " | ".join(cells)
            + " |"
        )
    lines += [
        "",
        "## Tally",
        "",
        "| depth | at least | protocol | " + " | ".join((EVERY, VARIES, NONE)) + " |",
        "|---|---|---|---|---|---|",
    ]
    protocols = [("per-level oracle", "over_seeds")]
    if found and all(f.one_rate_per_seed is not None for f in found):  # else no tally of one rate
        protocols.append(("one rate per model", "one_rate_over_seeds"))
    for depth in (2, 3, 4):
        for factor in FACTORS:
            for protocol, of in protocols:
                chosen = [getattr(f, of)[factor] for f in found if f.depth == depth]
                lines.append(
                    f"| {depth} | {factor:g}× | {protocol} | "
                    + " | ".join(str(chosen.count(k)) for k in (EVERY, VARIES, NONE))
                    + " |"
                )
    return "\n".join(lines) + "\n"


def main(argv=None):
    return cli.main(run, Config, __doc__, argv, prog="python -m reproduce.acceleration_seeds")


if __name__ == "__main__":
    main()
