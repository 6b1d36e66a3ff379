"""Sensitivity of the Figure 3 and Figure 5 (left) verdicts to the settings the paper
leaves open: every preprocessing x seeds x two iteration budgets (the default and 5x).

Each curve is trained once for the longest budget, with all seeds batched into the
learning-rate grid of one compiled loop; the shorter budget is its prefix (the same
trajectory), so both budgets cost one run. The claims are judged exactly as in the
figure modules. Writes results/sensitivity.csv (one row per claim and setting) and
results/sensitivity.md (in how many settings each claim holds).

    python -m reproduce.sensitivity [--seeds 0,1,2,3,4] [--budget-factors 1,5]
        [--preprocessings standardize,minmax] [--figures 3,5] [--figure5-steps 100000]
"""

import dataclasses
import pathlib
import time

import numpy as np
import pandas as pd

from reproduce import common, figure3, figure5
from tfovp import convergence, experiment
from tfovp.datasets import PRESETS, load_regression
from tfovp.experiment import CurveSpec, CurveStore
from tfovp.optimum import optimal_loss


@dataclasses.dataclass
class Config(common.Common):
    preprocessings: str = ",".join(PRESETS)  # comma-separated presets of tfovp.datasets
    seeds: tuple = (0.0, 1.0, 2.0, 3.0, 4.0)  # initialization seeds, batched with the grid
    budget_factors: tuple = (1.0, 5.0)  # budgets as multiples of each figure's default
    figures: str = "3,5"  # which figures' claims to test
    figure5_steps: int = 100_000  # Figure 5's default budget (the paper's 100K)
    extra_levels: tuple = (0.1, 0.05)  # further convergence levels to judge the claims at (no retraining)

    QUICK = {"steps": 200, "figure5_steps": 200, "seeds": (0.0, 1.0), "lrs": (1e-3, 1e-2, 1e-1),
             "preprocessings": "standardize,minmax"}


def _truncate(record, budget, seed, optimum, level):
    steps = np.asarray(record["steps"])
    keep = steps <= budget
    columns = [i for i, s in enumerate(record["seeds"]) if s == seed]
    losses = np.array([[np.nan if row[c] is None else row[c] for c in columns] for row in record["losses"]])[keep]
    diverged_at = np.asarray(record["diverged_at"])[columns]
    diverged = (diverged_at >= 0) & (diverged_at <= budget)
    rates = np.asarray(record["learning_rates"])[columns]
    return convergence.summarize_rates(steps[keep], losses, optimum, rates, diverged, level)


def _curves(figure, config):
    if figure == "3":
        return [(CurveSpec(figure3.label(n), depth=n, loss=p), p) for p in (2.0, 4.0) for n in (1, 2, 3)]
    return [(spec, spec.loss) for spec in figure5.specs(4.0)]


def run(config, out):
    started = time.time()
    seeds = [int(s) for s in config.seeds]
    rows, training = [], {}
    for preprocessing in [p for p in config.preprocessings.split(",") if p]:
        if preprocessing not in PRESETS:
            raise ValueError(f"--preprocessings entries must be in {sorted(PRESETS)}. Received: {preprocessing!r}")
        x, y = load_regression(config.dataset, config.data_dir, preprocessing)
        store = CurveStore(f"{out}/.curves/sensitivity/{config.dataset}-{preprocessing}")
        optima = {}
        for figure in [f.strip() for f in config.figures.split(",") if f.strip()]:
            base = config.steps if figure == "3" else config.figure5_steps
            longest = int(base * max(config.budget_factors))
            records = {}
            for spec, p in _curves(figure, config):
                if p not in optima:
                    optima[p] = optimal_loss(x, y, p, config.loss_reduction)[0]
                key = f"{spec.key()}-{longest}-{common.settings_key(config)}"
                record = store.get(key) if config.resume else None
                tic = time.time()
                if record is None:
                    record = experiment.run_curve(
                        spec, x, y, optima[p], steps=longest, grid=config.lrs, seeds=seeds,
                        level=config.level, reduction=config.loss_reduction, dtype=config.dtype,
                        extend_edges=False, progress=not config.quick and longest >= 100_000)
                    store.put(key, record)
                records[(spec.label, p)] = record
                training[f"figure{figure}"] = training.get(f"figure{figure}", 0.0) + record["elapsed_seconds"]
                print(f"[sensitivity] {preprocessing:18s} fig {figure} {spec.label:30s} l{p:g} "
                      f"{longest:,} it x {len(seeds)} seeds: {time.time() - tic:.1f}s", flush=True)
            for level in (config.level, *config.extra_levels):
                judged_config = dataclasses.replace(config, level=level)
                for factor in config.budget_factors:
                    budget = int(base * factor)
                    for seed in seeds:
                        summaries = {k: _truncate(r, budget, seed, optima[k[1]], level) for k, r in records.items()}
                        setting = f"{preprocessing}, seed {seed}, {budget:,} it, level {level:g}"
                        for claim in _judge(figure, summaries, judged_config, budget, setting):
                            rows.append({"figure": claim.figure, "claim": claim.claim, "level": level,
                                         "preprocessing": preprocessing, "seed": seed, "budget": budget,
                                         "budget_factor": factor, "verdict": claim.verdict,
                                         "measured": claim.measured})
    elapsed = round(time.time() - started, 1)
    frame = pd.DataFrame(rows).assign(elapsed_seconds=elapsed, loss_reduction=config.loss_reduction,
                                      dtype=config.dtype, started=time.strftime("%Y-%m-%dT%H:%M:%S",
                                                                                time.localtime(started)))
    if not frame.empty:  # seconds spent training the curves, also when they were resumed
        frame["training_seconds"] = frame["figure"].map(lambda f: round(training.get(f, 0.0), 1))
    frame = _merge(frame, f"{out}/sensitivity.csv")
    frame.to_csv(f"{out}/sensitivity.csv", index=False)
    _write_markdown(frame, out)
    return {"elapsed_seconds": elapsed, "rows": len(rows)}


SETTING = ["figure", "preprocessing", "seed", "budget"]  # what one row's verdict depends on, besides the level


def _merge(frame, path):
    """Keep the earlier rows of every setting not rerun now, so that figures, budgets or
    seeds can be studied in separate runs; a rerun setting replaces all its rows."""
    if frame.empty or not pathlib.Path(path).is_file():
        return frame
    previous = pd.read_csv(path)
    rerun = set(frame[SETTING].itertuples(index=False, name=None))
    previous = previous[[key not in rerun for key in previous[SETTING].itertuples(index=False, name=None)]]
    return pd.concat([previous, frame], ignore_index=True)


def _training_seconds(group):
    """Training time of one figure's rows, summed over the invocations that wrote them."""
    column = "training_seconds" if "training_seconds" in group else "elapsed_seconds"
    invocations = group["started"].fillna("") if "started" in group else pd.Series("", index=group.index)
    return float(group.groupby(invocations)[column].first().sum())


def _judge(figure, summaries, config, budget, setting):
    if figure == "3":
        speeds = {(int(label.split("-")[1].split()[0]) if label.startswith("depth") else 1, p):
                  (s["iterations_to_level"], s["final_relative_excess"]) for (label, p), s in summaries.items()}
        return figure3.claims(speeds, setting)
    by_label = {label: s for (label, _), s in summaries.items()}
    figure5_config = dataclasses.replace(figure5.Config(), steps=budget, level=config.level)
    return figure5.claims_for(by_label, figure5_config, 4.0, setting)


def _write_markdown(frame, out):
    lines = ["# Sensitivity of the verdicts to the settings the paper leaves open", "",
             "Generated by `python -m reproduce.sensitivity` (rows: sensitivity.csv). Settings covered:", ""]
    for figure, group in (frame.groupby("figure", sort=True) if not frame.empty else []):
        lines.append(
            f"- {figure}: preprocessings {', '.join(dict.fromkeys(group['preprocessing']))}; seeds "
            f"{sorted(set(int(s) for s in group['seed']))}; budgets {sorted(set(int(b) for b in group['budget']))} "
            f"iterations; levels {sorted(set(float(v) for v in group['level']))}; loss "
            f"{group['loss_reduction'].iloc[0]} over "
            f"examples; {group['dtype'].iloc[0]}; training time of the curves "
            f"{_training_seconds(group):,.0f} s")
    lines.append("")
    if frame.empty:
        lines.append("No rows.")
    else:
        lines += _tables(frame)
    with open(f"{out}/sensitivity.md", "w") as handle:
        handle.write("\n".join(lines) + "\n")


def _tables(frame):
    lines = ["## Per claim and convergence level", "",
             "| claim | level | PASS | FAIL | INCONCLUSIVE | settings |", "|---|---:|---:|---:|---:|---:|"]
    for (claim, level), group in frame.groupby(["claim", "level"], sort=False):
        counts = group["verdict"].value_counts()
        lines.append(f"| {claim} | {level:g} | {counts.get('PASS', 0)} | {counts.get('FAIL', 0)} | "
                     f"{counts.get('INCONCLUSIVE', 0)} | {len(group)} |")
    lines += ["", "## Per claim, level, preprocessing and budget", "",
              "Verdicts per seed in seed order (P = PASS, F = FAIL, I = INCONCLUSIVE).", ""]
    table = frame.assign(passed=frame["verdict"] == "PASS").groupby(
        ["claim", "level", "preprocessing", "budget"], sort=False)
    lines += ["| claim | level | preprocessing | budget | PASS / seeds | verdicts |", "|---|---:|---|---:|---:|---|"]
    for (claim, level, preprocessing, budget), group in table:
        lines.append(f"| {claim} | {level:g} | {preprocessing} | {budget:,} | {int(group['passed'].sum())} / "
                     f"{len(group)} | {' '.join(v[0] for v in group['verdict'])} |")
    return lines


def main(argv=None):
    return common.main_wrapper(run, Config, __doc__, argv)


if __name__ == "__main__":
    main()
