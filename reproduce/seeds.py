"""The linear figures over initialization seeds: is a verdict the seed's or the setting's?

Each figure (Figures 3 and 4, Figure 5's left panel) is run once per seed (`--seed k`;
the data stays fixed, as in the paper), with its own criteria and noise rule, and the
verdicts are combined over the seeds by the seed rule (`thresholds.MIN_SEEDS`: PASS if
every seed passes, FAIL if every seed fails, else INCONCLUSIVE "within seed noise").
Each speed-up is reported per level as the median over seeds with its min-max range,
from one rate per model (the protocol claims are judged on) and from the per-level
oracle.

    python -m reproduce.seeds [--figures figure3,figure4,figure5] [--seeds 0,1,2,3,4]
        [--steps N] [--out results] [--resume]

Writes OUT/seeds/<figure>-seed<k>.* (each seed's run, as the figure writes it; with
--resume a seed whose JSON is there with the same settings is not trained again),
OUT/seeds.csv (every claim per seed), OUT/seeds_speedup.csv (every speed-up per seed and
level), OUT/seeds.json and OUT/seeds.md, and one row per claim as figure
"<figure>-seeds" in OUT/claims.json.
"""

import dataclasses
import json
import pathlib
import time

import numpy as np

from reproduce import cli, common, figure3, figure4, figure5
from reproduce.study.criteria.thresholds import MIN_SEEDS
from reproduce.study.progress import job_scope

MODULES = {"figure3": figure3, "figure4": figure4, "figure5": figure5}
FOLDER = "seeds"  # OUT/seeds: the runs of every seed


@dataclasses.dataclass
class Config(common.StudyConfig):
    figures: tuple[str, ...] = cli.setting(
        tuple(MODULES), f"figures run over the seeds, comma-separated ({', '.join(MODULES)}; Figure 5: left panel)"
    )
    seeds: tuple[int, ...] = cli.setting((0, 1, 2, 3, 4), "initialization seeds (>= 0, at least 5 distinct)")
    steps: int = cli.setting(0, "iterations per curve (0: each figure's own: 20,000 for Figures 3-4, 100,000 for 5)")

    QUICK = {"steps": 200, "lrs": (1e-3, 1e-2, 1e-1), "rho": 2.0, "seeds": (0, 1)}

    def validate(self):
        super().validate()
        cli.check_values("figures", self.figures, lambda f: f in MODULES, f"names among {', '.join(MODULES)}")
        cli.check_values("seeds", self.seeds, lambda s: isinstance(s, int) and s >= 0, "integers >= 0")
        cli.check(len(set(self.seeds)) == len(self.seeds), f"--seeds {self.seeds}: a seed given twice")
        cli.check(
            self.quick or len(self.seeds) >= MIN_SEEDS,
            f"--seeds {','.join(map(str, self.seeds))}: expected at least {MIN_SEEDS} seeds (the seed rule's)",
        )
        cli.check(self.steps == 0 or self.steps >= 1, f"--steps {self.steps}: expected 0 or an integer >= 1")
        if self.steps:
            self.check_steps("steps", self.steps)


def figure_config(config, name, seed):
    """The Config of figure `name` for `seed`: the study's shared settings, the figure's
    own budget unless --steps, Figure 5's left panel only, tag seed<k>."""
    module = MODULES[name]
    fields = {f.name for f in dataclasses.fields(module.Config)}
    shared = {k: v for k, v in dataclasses.asdict(config).items() if k in fields and k not in ("steps", "seeds")}
    values = {**shared, "seed": seed, "tag": f"seed{seed}"}
    if config.steps:
        values["steps"] = config.steps
    if module is figure5:
        values["panels"] = "left"
    return module.Config(**values)


def _stored(path, figure_config_):
    """The JSON at `path` if it was written with `figure_config_`'s settings, else None."""
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    wanted = json.loads(json.dumps(dataclasses.asdict(figure_config_)))
    ignored = {"resume", "quick", "data_dir", "tensorboard"}  # change nothing that is computed
    same = all(data["config"].get(k) == v for k, v in wanted.items() if k not in ignored)
    return data if same else None


def run(config, workdir, job=None):
    from reproduce.study.claims import ClaimsFile

    out, started = pathlib.Path(workdir), time.time()
    folder = out / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    ClaimsFile(out).read()  # a corrupt shared claims file stops here, before any training
    plans = {(name, seed): figure_config(config, name, seed) for name in config.figures for seed in config.seeds}
    runs, training = {}, 0.0
    with job_scope(job, "seeds") as job:
        todo = {}
        for key, plan in plans.items():
            stem = common.figure_name(key[0], plan)
            kept = _stored(folder / f"{stem}.json", plan) if config.resume else None
            if kept is None:
                todo[key] = plan
                common.plan(job, stem, plan, MODULES[key[0]].planned(plan))
            else:
                runs[key] = kept
                job.write(f"{stem}: kept from {folder / stem}.json (--resume)")
        for key, plan in todo.items():
            runs[key] = MODULES[key[0]].run(plan, folder, job)
            training += runs[key].get("training_seconds") or 0.0
        claims, per_seed, speedups = [], [], []
        for name in config.figures:
            by_seed = {seed: runs[(name, seed)] for seed in config.seeds}
            figure_claims, rows = judge(name, by_seed)
            claims.append((name, figure_claims))
            per_seed += rows
            speedups += speedup_rows(name, by_seed)
        summary = write(out, config, claims, per_seed, speedups, job, started, training)
    return summary


def judge(name, by_seed):
    """(the claim rows over seeds of figure `name`, the per-seed rows of seeds.csv) from
    {seed: that seed's figure JSON}."""
    from reproduce.study.claims import Claim
    from reproduce.study.criteria.seeds import seeds_claim

    order = [row["claim"] for row in by_seed[min(by_seed)]["claims"]]
    rows, claims = [], []
    for claim in order:
        found = {}
        for seed, data in by_seed.items():
            row = next((r for r in data["claims"] if r["claim"] == claim), None)
            if row is not None:
                found[seed] = Claim(**{f.name: row.get(f.name, "") for f in dataclasses.fields(Claim)})
                rows.append(
                    {
                        "figure": name,
                        "claim": claim,
                        "seed": seed,
                        "verdict": row["verdict"],
                        "measured": row["measured"],
                    }
                )
        claims.append(seeds_claim(f"{name}-seeds", found, _setting(by_seed)))
    return claims, rows


def _setting(by_seed):
    """The seed-0 run's setting with the seeds in place of its seed."""
    first = by_seed[min(by_seed)]["claims"][0]["setting"]
    return f"{first.split(', seed ')[0]}, seeds {','.join(str(s) for s in sorted(by_seed))}"


def speedup_rows(name, by_seed):
    """One row per comparison, level and seed: S with one rate per model and from the
    per-level oracle, with their kinds."""
    from reproduce.study.criteria import Comparison

    rows = []
    for seed, data in sorted(by_seed.items()):
        for key, record in (data.get("speedup") or {}).items():
            c = Comparison.from_json(record, key)
            for s, o in zip(c.speedups, c.one_rate_speedups):
                rows.append(
                    {
                        "figure": name,
                        "comparison": key,
                        "level": s.level,
                        "seed": seed,
                        "speedup": None if o is None else o.value,
                        "kind": None if o is None else o.kind,
                        "oracle_speedup": s.value,
                        "oracle_kind": s.kind,
                    }
                )
    return rows


def spread(rows):
    """{(figure, comparison, level): (n seeds exact, median, min, max)} of the one-rate S
    over seeds, where every seed has an exact S at that level (else n exact and None)."""
    grouped = {}
    for r in rows:
        grouped.setdefault((r["figure"], r["comparison"], r["level"]), []).append(r)
    out = {}
    for key in sorted(grouped, key=lambda k: (k[0], k[1], -k[2])):
        chosen = grouped[key]
        exact = [r["speedup"] for r in chosen if r["kind"] == "exact"]
        if exact and len(exact) == len(chosen):
            out[key] = (len(exact), float(np.median(exact)), min(exact), max(exact))
        else:
            out[key] = (len(exact), None, None, None)
    return out


def write(out, config, claims, per_seed, speedups, job, started, training):
    """seeds.csv, seeds_speedup.csv, seeds.json, seeds.md and the claim rows; returns the
    JSON summary."""
    import pandas as pd

    from reproduce.study import outputs
    from reproduce.study.claims import ClaimsFile
    from reproduce.study.provenance import RunSummary

    outputs.write_csv(out / "seeds.csv", pd.DataFrame(per_seed))
    outputs.write_csv(out / "seeds_speedup.csv", pd.DataFrame(speedups))
    claims_file = ClaimsFile(out)
    for name, rows in claims:
        claims_file.replace(f"{name}-seeds", rows, job.command)
    spreads = spread(speedups)
    summary = RunSummary.now("seeds", job.command, config, started, training).to_json(
        claims=[dataclasses.asdict(c) for _, rows in claims for c in rows],
        speedup_spread=[
            {"figure": f, "comparison": c, "level": lv, "seeds_exact": n, "median": m, "min": lo, "max": hi}
            for (f, c, lv), (n, m, lo, hi) in spreads.items()
        ],
    )
    outputs.write_json(out / "seeds.json", summary)
    from reproduce.study.findings import write_page

    write_page(out / "seeds.md", page_head(summary), page_body(claims, per_seed, spreads, len(config.seeds)))
    return summary


def page_head(summary):
    c = summary["config"]
    budget = f"{c['steps']:,} iterations" if c["steps"] else "each figure's own budget"
    return (
        "# The linear figures over initialization seeds\n\n"
        f"`{summary['command']}` · figures {', '.join(c['figures'])}, seeds {', '.join(map(str, c['seeds']))} "
        f"(initialization only; the data fixed), {budget}"
        f", rates tuned to rho {c['rho']:g} per seed · {summary['training_seconds']:,.0f} s of training · "
        f"{summary['machine']['cpu_model']}, {summary['machine']['cpu_count']} cores\n\n"
        "Per seed, each claim is judged by its figure's criterion (the tuned speed-ups with their noise band "
        "rho); over the seeds it PASSes when every seed passes, FAILs when every seed fails, and is "
        "INCONCLUSIVE otherwise (`reproduce/study/criteria/thresholds.py`, MIN_SEEDS). Written by "
        "`python -m reproduce.seeds`; each seed's run is under `seeds/`.\n"
    )


def page_body(claims, per_seed, spreads, seeds):
    """The page's tables: each claim's verdict over the seeds beside its verdict per seed
    (`per_seed`: the rows of seeds.csv), and `spread`'s speed-ups over the `seeds` seeds."""
    verdicts = {}
    for r in per_seed:
        verdicts.setdefault((r["figure"], r["claim"]), []).append(f"{r['seed']}: {r['verdict']}")
    lines = ["## Verdicts over the seeds", "", "| figure | claim | over the seeds | per seed |", "|---|---|---|---|"]
    for name, rows in claims:
        for row in rows:
            per = ", ".join(verdicts[(name, row.claim)])
            lines.append(f"| {name} | {row.claim} | **{row.verdict}** | {per} |")
    lines += [
        "",
        "## Speed-ups over the seeds",
        "",
        "One rate per model (the protocol the claims are judged on): median S over the seeds with its min-max "
        "range, at every level where every seed has an exact S; elsewhere how many seeds do.",
        "",
        "| figure | comparison | level | median S | min - max |",
        "|---|---|---:|---:|---|",
    ]
    for (figure, comparison, level), (n, median, low, high) in spreads.items():
        if median is None:
            if n:
                lines.append(f"| {figure} | {comparison} | {level:.3g} | – | exact in {n} of {seeds} seeds |")
            continue
        lines.append(f"| {figure} | {comparison} | {level:.3g} | {median:.3g} | {low:.3g} - {high:.3g} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    return cli.main(run, Config, __doc__, argv, prog="python -m reproduce.seeds")


if __name__ == "__main__":
    main()
