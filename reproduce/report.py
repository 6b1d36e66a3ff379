"""Regenerate the tables of results/README.md, results/claims_table.md and the results
table at the top of the project's README.md from the runs' own files.

    python -m reproduce.report [--out results] [--readme README.md]

Writes OUT/<name>.md for every figure and Appendix C run, per figure: its command,
machine, versions, wall time, settings, and per curve the selected learning rate,
iterations to each convergence level, diverged and stalled rates, the tuned rate;
Figure 5's MNIST models and Appendix C; then the verdicts of each figure's claims; and
lists those pages between the `<!-- report:begin -->` and `<!-- report:end -->` markers
of OUT/README.md. Between `<!-- tuned:begin -->` and
`<!-- tuned:end -->`: every speed-up claim judged on the paper's grid and with both
rates tuned, the speed-ups at a few levels both ways, and the acceleration map's.
Between `<!-- count:begin -->` and `<!-- count:end -->`: the count of claim rows and
verdicts of OUT/claims.json.
Replaces what lies between `<!-- claims:begin -->` and `<!-- claims:end -->` of the
README given by `--readme` (if it has the markers) with one row per figure or study of
OUT/claims.json (its verdict counts, command, training time, machine and plot), and
writes OUT/claims_table.md: one row per claim, the threshold verdict and the speed-up
verdict side by side, with what was measured.
"""

import csv
import json
import os
import pathlib

from mnist_tutorial import config as tutorial
from reproduce.study import findings, outputs
from reproduce.study.claims import ClaimsFile
from reproduce.study.criteria import SPEED_UP
from reproduce.study.provenance import RunSummary
from reproduce.study.store import StudyError
from tfovp.cli import ArgumentParser
from tfovp.files import atomic_write_text, locked

BEGIN, END = "<!-- report:begin -->", "<!-- report:end -->"
CLAIMS_BEGIN, CLAIMS_END = "<!-- claims:begin -->", "<!-- claims:end -->"
TUNED_BEGIN, TUNED_END = "<!-- tuned:begin -->", "<!-- tuned:end -->"
COUNT_BEGIN, COUNT_END = "<!-- count:begin -->", "<!-- count:end -->"
BUDGET_BEGIN, BUDGET_END = "<!-- budget:begin -->", "<!-- budget:end -->"
BUDGET_LEVELS = (0.1, 0.05, 0.01, 0.0001)
PAPER = {  # output stem -> where the claim is in the paper
    "figure2": "Fig. 2",
    "figure3": "Fig. 3",
    "figure4": "Fig. 4",
    "figure5": "Fig. 5",
    "appendix_c": "App. C",
    "theorem2": "Thm. 2",
    "section7": "Sec. 7, App. B",
    "peer_2024": "2024 student report",
}
COMMANDS = {
    "figure2": "python -m reproduce.figure2",
    "figure3": "python -m reproduce.figure3",
    "figure4": "python -m reproduce.figure4",
    "figure5": "python -m reproduce.figure5",
    "figure3-abalone": "python -m reproduce.figure3 --dataset abalone",
}


def _iterations(curve, level):
    levels = curve.get("iterations_to_levels") or {}
    value = levels.get(str(level))
    return "–" if value is None else f"{value:,}"


def _rate(value):
    return "all diverged" if value is None else f"{value:g}"


def _rates(values):
    return ", ".join(f"{v:g}" for v in values) or "none"


def figure_section(summary):
    c, v, m = summary["config"], summary["versions"], summary["machine"]
    name = summary["figure"]
    lines = [
        f"### {name}",
        "",
        f"`{summary.get('command', COMMANDS.get(name, name))}` (all of them: `python -m reproduce.all`) · "
        f"{c['dataset']}, "
        f"preprocessing `{c['preprocessing']}`, l_p loss {c['loss_reduction']} over examples, "
        f"{c['steps']:,} iterations, {c['dtype']}, seed {c['seed']}, grid {_rates(c['lrs'])}, "
        f"convergence level {c['level']:g} · training time of its curves "
        f"{summary.get('training_seconds', summary['elapsed_seconds']):,.0f} s (wall time of the invocation that "
        f"wrote it: {summary['elapsed_seconds']:,.0f} s) · "
        f"{m['processor']}, {m['cpu_count']} cores · Python {v['python']}, TensorFlow {v['tensorflow']}, "
        f"Keras {v['keras']} · optimum {', '.join(f'{k} L* = {x:.6g}' for k, x in summary['optimum'].items())}",
        "",
        f"![{name}]({name}.png)",
        "",
        "| curve | best lr | it. to 0.5 | it. to 0.2 | it. to 0.1 | it. to 0.01 | final rel. excess | diverged lrs "
        "| edge | tuned at 0.1: lr (T) |",
        "|---|---:|---:|---:|---:|---:|---:|---|---|---|",
    ]
    for label, curve in summary["curves"].items():
        final = curve["final_relative_excess"]
        edge = curve["at_edge"] or ""
        if edge and "extended_grid" in curve:  # runs from before the tuning
            wider = curve["extended_grid"]
            edge += (
                f" (extended grid: best {_rate(wider['best_learning_rate'])}, it. to level "
                f"{wider['iterations_to_level'] if wider['iterations_to_level'] is not None else '–'})"
            )
        lines.append(
            f"| {label} | {_rate(curve['best_learning_rate'])} | "
            f"{_iterations(curve, 0.5)} | {_iterations(curve, 0.2)} | {_iterations(curve, 0.1)} | "
            f"{_iterations(curve, 0.01)} | {'–' if final is None else f'{final:.3g}'} | "
            f"{_rates(curve['diverged_rates'])} | {edge} | {_tuned_cell(curve.get('tuning'), 0.1)} |"
        )
    lines += _mnist_lines(summary.get("mnist"))
    lines += _speedup_lines(summary.get("speedup"), summary["figure"])
    lines += ["", "| claim | criterion | measured | verdict |", "|---|---|---|---|"]
    for claim in summary["claims"]:
        lines.append(f"| {claim['claim']} | {claim['criterion']} | {claim['measured']} | **{claim['verdict']}** |")
    return "\n".join(lines) + "\n"


SPEEDUP_LEVELS = (0.5, 0.2, 0.1, 0.05, 0.01, 0.001)


def _speedup(value, kind):
    if value is None:
        return "–"
    return {"exact": "", "lower bound": "> ", "upper bound": "< ", "indefinite": "? "}[kind] + f"{value:.3g}"


def _tuned_cell(tuning, level):
    """'lr (T), within rho of the edge' of a curve's tuning at `level`, or a dash."""
    if not tuning:
        return "–"
    found = next((t for t in tuning["levels"] if t["level"] != "final" and abs(t["level"] - level) < 1e-12), None)
    if found is None or found["learning_rate"] is None:
        return "not reached"
    iterations = found["iterations"]
    edge = ", at the edge" if found["near_edge"] else ""
    return f"{found['learning_rate']:.3g} ({'–' if iterations is None else f'{iterations:,.0f}'}){edge}"


def _speedup_at(data, level):
    """(value, kind) of a JSON speed-up record at `level`."""
    at = {round(v, 12): (s, k) for v, s, k in zip(data["levels"], data["speedup"], data["kind"])}
    return at.get(round(level, 12), (None, None))


def _both(c, level):
    """'tuned [grid]' at `level` (the grid's alone for records without tuning)."""
    tuned = _speedup(*_speedup_at(c, level))
    if not c.get("grid"):
        return tuned
    grid = _speedup(*_speedup_at({"levels": c["levels"], **c["grid"]}, level))
    return "–" if tuned == grid == "–" else f"{tuned} [{grid}]"


def _speedup_lines(speedups, figure):
    """Speed-up S = T_baseline / T_contender at a few levels (both rates tuned, the paper's
    grid in brackets), and the crossover."""
    if not speedups:
        return []
    header = " | ".join(f"S at {level:g}" for level in SPEEDUP_LEVELS)
    tuned = any(c.get("tuned") for c in speedups.values())
    lines = [
        "",
        f"Speed-ups (`{figure}_speedup.csv` has every level; ![speed-ups]({figure}_speedup.png))"
        + (", both rates tuned, [the paper's grid]:" if tuned else ", on the grid:"),
        "",
        f"| contender vs baseline | crossover | {header} |",
        "|---|---:|" + "---:|" * len(SPEEDUP_LEVELS),
    ]
    for name, c in speedups.items():
        cells = [_both(c, level) for level in SPEEDUP_LEVELS]
        cross = "none" if c["crossover"] is None else f"{c['crossover']:,}"
        lines.append(f"| {name} | {cross} | " + " | ".join(cells) + " |")
    return lines


TUNED_LEVELS = (0.2, 0.1, 0.05, 10**-1.75, 0.01, 0.001)


def tuned_tables(out):
    """The "paper grid vs tuned" tables: every speed-up claim's verdict both ways, the
    speed-ups of every compared pair at a few levels both ways, and the map's."""
    out = pathlib.Path(out)
    verdicts = [
        "| output | claim | paper's grid | both rates tuned | changed |",
        "|---|---|---|---|---|",
    ]
    levels = " | ".join(f"S({level:.3g})" for level in TUNED_LEVELS)
    pairs = [f"| output | contender vs baseline | rho | {levels} |", "|---|---|---:|" + "---:|" * len(TUNED_LEVELS)]
    for path in sorted(out.glob("figure*.json")):
        summary = read_summary(path, ())
        for row in summary.get("speedup_claims_on_grid", []):
            changed = "**yes**" if row["grid"] != row["tuned"] else "no"
            verdicts.append(f"| {path.stem} | {row['claim']} | {row['grid']} | {row['tuned']} | {changed} |")
        for name, c in (summary.get("speedup") or {}).items():
            if c.get("tuned"):
                cells = " | ".join(_both(c, level) for level in TUNED_LEVELS)
                pairs.append(f"| {path.stem} | {name} | {c['rho']:g} | {cells} |")
    lines = [
        "Every speed-up claim judged twice by the same rule (`criteria.speedup_claim`): on the paper's grid, "
        "and with both families' learning rates tuned (`tfovp.tuning`; the claim rows of `claims.json` are "
        "the tuned ones). Outputs written before the tuning existed have no row.",
        "",
        *verdicts,
        "",
        "Speed-ups S(e) = T_baseline / T_contender, both rates tuned [the paper's grid] (`>` / `<`: bounds):",
        "",
        *pairs,
    ]
    return "\n".join(lines) + "\n"


def budget_rows(out):
    """{(setting, depth): {budget: comparison JSON}} of every ℓ4 depth-n-over-linear speed-up
    that the committed outputs measure at more than one budget: the default setting from
    Figure 3 (2·10⁴ and 10⁶) and the map (10⁵), the map's other settings at 10⁵ and from
    its 10⁶ runs (`acceleration-*.json`)."""
    out = pathlib.Path(out)
    found = {}
    for path in sorted(out.glob("figure3*.json")):
        summary = read_summary(path, ())
        if summary["config"].get("dataset") != "ethanol" or summary["config"].get("seed", 0) != 0:
            continue
        for n in (2, 3):
            c = (summary.get("speedup") or {}).get(f"depth-{n} net vs linear model (depth 1) (l4)")
            if c and c.get("tuned"):
                found.setdefault(("default", n), {})[int(c["budget"])] = c
    for path in sorted(out.glob("acceleration*.json")):
        summary = read_summary(path, ())
        for setting, data in summary.get("settings", {}).items():
            for n, c in (data.get("comparisons") or {}).items():
                if c.get("tuned"):
                    budgets = found.setdefault((setting, int(n)), {})
                    budget = int(c["budget"])
                    if budget not in budgets or _bounds(c) < _bounds(budgets[budget]):
                        budgets[budget] = c
    return {key: budgets for key, budgets in found.items() if len(budgets) > 1}


def _bounds(comparison):
    """How many of a speed-up record's levels are bounds: where two runs measure one
    budget (the map and its rerun of the deciding settings with the search extended until
    bracketed), the table takes the one with fewer."""
    return sum(kind != "exact" for kind in comparison["kind"])


def _rejected(comparison, level):
    """'lr r, r' diverged at step k' of the deep net's tuned rate at `level` where the rate
    tried just above it diverged (records that keep the step), else ''."""
    levels = [round(v, 12) for v in comparison["levels"]]
    steps = comparison.get("contender_above_diverged_at")
    if not steps or round(level, 12) not in levels:
        return ""
    j = levels.index(round(level, 12))
    if steps[j] is None:
        return ""
    return f"lr {comparison['contender_lr'][j]:.3g}; {comparison['contender_above'][j]:.3g} diverged at {steps[j]:,}"


def budget_table(out):
    """S(e) of each setting and depth that several budgets measure, one column per budget
    (`budget_rows`): a speed-up is a statement about a level and a budget."""
    rows = budget_rows(out)
    if not rows:
        return ""
    lines = [
        "S(e) = T_linear / T_depth with both rates tuned, per budget, at e = "
        + ", ".join(f"{level:.3g}" for level in BUDGET_LEVELS)
        + " (`>` / `<`: bounds; –: no data). Each budget is its own run, tuned within that budget (the default "
        "setting's 2·10⁴ and 10⁶ are Figure 3's runs, its 10⁵ the map's); a deep net's rate that is best within "
        "a short budget can diverge later, so a longer run may select a slower one: in brackets, for runs that "
        f"keep it, the deep net's rate at e = {BUDGET_LEVELS[0]:g} and the step at which the rate tried just above "
        "it diverged. Where a tuned rate was the last one tried (the committed map's synthetic and noisy problems, "
        "depth 2 at lr 62.5: marked by `python -m reproduce.migrate_caps`), S is the bound it then is; where two "
        "runs measure one budget (the map and its rerun of the deciding settings, the search extended until "
        "bracketed), the one with fewer bounds is shown.",
        "",
        *_budget_grid(rows),
    ]
    for path in sorted(pathlib.Path(out).glob("acceleration*.json")):
        summary = read_summary(path, ())
        if one_run_rows(summary):
            lines += ["", *one_run_lines(summary)]
    return "\n".join(lines) + "\n"


def _budget_grid(rows):
    """The table of `budget_rows`-like {(setting, depth): {budget: comparison}}."""
    budgets = sorted({b for found in rows.values() for b in found})
    lines = [
        f"| setting | depth | {' | '.join(f'{b:,} iterations' for b in budgets)} |",
        "|---|---:|" + "---|" * len(budgets),
    ]
    for (setting, n), found in sorted(rows.items()):
        cells = [_budget_cell(found[b]) if b in found else "" for b in budgets]
        lines.append(f"| {setting} | {n} | " + " | ".join(cells) + " |")
    return lines


def one_run_rows(summary):
    """{(setting, depth): {budget: comparison JSON}} of a map run that kept shorter budgets
    (`reproduce.acceleration --budgets`): its own budget and each kept one, from the same
    families."""
    found = {}
    for setting, data in summary.get("settings", {}).items():
        kept = data.get("budgets") or {}
        for budget, at in kept.items():
            for n, c in at["comparisons"].items():
                found.setdefault((setting, int(n)), {})[int(budget)] = c
        for n, c in (data.get("comparisons") or {}).items() if kept else ():
            found.setdefault((setting, int(n)), {})[int(summary["config"]["steps"])] = c
    return found


def one_run_lines(summary):
    """The budget table of one run cut at each budget it kept (`one_run_rows`)."""
    kept = [at for data in summary.get("settings", {}).values() for at in (data.get("budgets") or {}).values()]
    if kept and all(at.get("tuned_within") for at in kept):
        tuned = (
            "both rates tuned within each budget to the run's ρ: the tuning searched again on every rate cut "
            "there and trained the rates it added for the whole run (`tfovp.families.tune_family(budgets=...)`; "
            "a rate that diverged later counts as stable within the budget"
        )
    else:
        tuned = (
            "both rates tuned again within it among the rates the full run's tuning tried, which searched "
            "around the full run's best rates only (a rate that diverged later counts as stable; a best rate "
            "at the end of those is capped and S the bound it then is; brackets as wide as the rates tried, "
            "so coarser than ρ where a shorter budget's best rate is far from the full run's"
        )
    return [
        f"From one run cut at each budget, `{summary['command']}`: every family trained once for "
        f"{summary['config']['steps']:,} iterations, the tracking of each level kept after each shorter budget, "
        f"so that the run cut there is exactly a run of that budget, and {tuned}: `_budgets.csv`). "
        "S(e) at e = " + ", ".join(f"{level:.3g}" for level in BUDGET_LEVELS) + ":",
        "",
        *_budget_grid(one_run_rows(summary)),
    ]


def _budget_cell(comparison):
    cell = " / ".join(_speedup(*_speedup_at(comparison, level)) for level in BUDGET_LEVELS)
    rejected = _rejected(comparison, BUDGET_LEVELS[0])
    return f"{cell} ({rejected})" if rejected else cell


def _map_lines(summary):
    """The acceleration map's speed-ups over the linear model, tuned [grid], per setting."""
    name, config = summary["figure"], summary["config"]
    head = " | ".join(f"depth {n}: S(0.1) / S(0.01) / S(0.001)" for n in (2, 3, 4))
    lines = [
        f"`{summary['command']}` ({config['steps']:,} iterations, "
        f"{summary.get('training_seconds', summary['elapsed_seconds']) / 60:,.0f} min of training), "
        "both rates tuned [the paper's grid]:",
        "",
        f"| {name} setting | L(0)/L* | span of W* | {head} |",
        "|---|---:|---:|---|---|---|",
    ]
    for setting, data in summary["settings"].items():
        comparisons = data.get("comparisons")
        if not comparisons:
            continue
        cells = [" / ".join(_both(comparisons[str(n)], level) for level in (0.1, 0.01, 0.001)) for n in (2, 3, 4)]
        ratio = data["initial_over_optimum"]
        span = data.get("optimum_span")
        lines.append(
            f"| {setting} | {'inf' if ratio is None or ratio == float('inf') else f'{ratio:.3g}'} | "
            f"{'–' if span is None else f'{span:.3g}'} | " + " | ".join(cells) + " |"
        )
    return lines


def tally_lines(summary, factors=(2.0, 10.0)):
    """How many of a map's settings have, per depth, a level where the tuned S is at
    least each factor: established (S / rho clears it, S exact or a lower bound: the
    noise rule of `criteria.thresholds`), or only within noise (S * rho clears it);
    capped rates read as the bounds they are."""
    from reproduce.study.criteria import Comparison

    comparisons = {
        n: [Comparison.from_json(c) for data in summary["settings"].values() if (c := tuned_comparison(data, n))]
        for n in (2, 3, 4)
    }
    total = len(summary["settings"])
    lines = [
        f"Settings of {total} where depth n is at least as many times faster as the linear model at some level, "
        "tuned: established (S / ρ at or above it) + only within noise (S · ρ at or above it, S / ρ below); "
        "per-level oracle, and (where the run records it) one rate per model:",
        "",
        "| at least | " + " | ".join(f"depth {n}" for n in comparisons) + " |",
        "|---|" + "---|" * len(comparisons),
    ]
    with_one_rate = all(c.one_rate is not None for found in comparisons.values() for c in found)
    for one_rate in (False, True) if with_one_rate else (False,):
        for factor in factors:
            cells = []
            for found in comparisons.values():
                kinds = [at_least(c, factor, one_rate) for c in found]
                cells.append(f"{kinds.count(ESTABLISHED)} + {kinds.count(WITHIN_NOISE)}")
            name = f"{factor:g}×, one rate per model" if one_rate else f"{factor:g}×"
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


ESTABLISHED, WITHIN_NOISE, NOT_REACHED = "established", "within noise", "no"


def at_least(comparison, factor, one_rate=False):
    """Whether a tuned comparison's S reaches `factor` at some level: ESTABLISHED (S / rho
    at or above it, S exact or a lower bound), WITHIN_NOISE (only S * rho is) or
    NOT_REACHED; the map's tally rule (`tally_lines`), capped rates read as bounds. Of the
    per-level oracle's S, or with `one_rate` of the one-rate protocol's (None where the
    record has none)."""
    from tfovp.speedup import EXACT, LOWER

    if one_rate and comparison.one_rate is None:
        return None
    rho = comparison.rho or 1.0
    speedups = comparison.one_rate_speedups if one_rate else comparison.speedups
    usable = [x for x in speedups if x.kind in (EXACT, LOWER) and x.value is not None]
    if any(x.value / rho >= factor for x in usable):
        return ESTABLISHED
    if any(x.value * rho >= factor for x in usable):
        return WITHIN_NOISE
    return NOT_REACHED


def tuned_comparison(data, n):
    """The JSON record of depth n's tuned comparison in one map setting's record, or None
    (not tuned, or not there)."""
    c = (data.get("comparisons") or {}).get(str(n))
    return c if c and c.get("tuned") else None


def _mnist_lines(models):
    if not models:
        return []
    lines = [
        "",
        "MNIST tutorial (right panel; per-step data in `figure5_mnist_<run>[_seed<k>].csv`; the loss's parts "
        "in figure5_mnist.png):",
        "",
        "| run | parameters | seeds | steps | test error, mean (min–max) | training time |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, r in models.items():
        errors = r.get("test_errors", [r["test_error"]])
        spread = f"{sum(errors) / len(errors):.2f} % ({min(errors):.2f}–{max(errors):.2f})"
        lines.append(
            f"| {name} | {r['parameters']:,} | {len(errors)} | {r['steps']:,} | {spread} | "
            f"{r['seconds'] / 60:,.1f} min |"
        )
    return lines


def _cell(text, template):
    """A CSV field formatted with `template`; empty or NaN fields (no value) as a dash."""
    value = float(text) if text not in ("", None) else float("nan")
    return "–" if value != value else template.format(value)


def appendix_c_section(summary, table, reference=None):
    """An Appendix C run's section: its command, table and best rates, and, given the
    `reference` run's summary (the committed `appendix_c`), the claims both judged side
    by side (`_beside`)."""
    from reproduce.appendix_c import RHO  # the study's modules load TensorFlow-free but with matplotlib

    args, v, m = _arguments(summary), summary["versions"], summary["machine"]
    steps, stem = args.get("steps"), summary.get("figure", "appendix_c")
    budget = f"{_budget(args)} per run"
    flag = f" --steps {steps}" if steps else ""
    if tuple(args.get("grids", ("lr", "std"))) != ("lr", "std"):
        flag += f" --grids {','.join(args['grids'])}"
    if "lr" in args.get("grids", ("lr",)) and args.get("rho", 0) != RHO:  # 0: before the refinement
        flag += f" --rho {args.get('rho', 0):g}"
    if args.get("seed", tutorial.SEED) != tutorial.SEED:
        flag += f" --seed {args['seed']}"
    if args.get("tag"):
        flag += f" --tag {args['tag']}"
    lines = [
        f"### {stem}",
        "",
        f"`python -m reproduce.appendix_c{flag}` · "
        f"{budget} · {len(table)} runs, {summary.get('training_seconds', summary['elapsed_seconds']) / 60:,.0f} min of "
        f"training · {m['processor']}, "
        f"{m['cpu_count']} cores · Python {v['python']}, TensorFlow {v['tensorflow']}, Keras {v['keras']}",
        "",
        f"![{stem}]({stem}.png)",
        "",
        "| group | base lr | rate from | init std | last-10 % minibatch loss | its cross-entropy | its L2 term | "
        "‖fc1‖_F at the end | test error | diverged at |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in table:
        lines.append(
            f"| {row['group']} | {float(row['base_lr']):.3g} | {row.get('rates') or 'grid'} | "
            f"{float(row['init_std']):g} | "
            f"{_cell(row['last_tenth_loss'], '{:.4f}')} | {_cell(row.get('last_tenth_cross_entropy'), '{:.4f}')} | "
            f"{_cell(row.get('last_tenth_l2_term'), '{:.4f}')} | {_cell(row.get('fc1_frobenius_end'), '{:.3g}')} | "
            f"{_cell(row['test_error'], '{:.2f} %')} | {_cell(row['diverged_at'], '{:,.0f}')} |"
        )
    best = summary["best"]
    if best:
        lines += [
            "",
            "Fastest base learning rate (lowest last-10 % loss): "
            + ", ".join(
                f"{g}: {b['base_lr']:g} ({b['last_tenth_loss']:.4f})" if b else f"{g}: every rate diverged"
                for g, b in best.items()
            )
            + f"; overparameterized faster at the best rates: {summary['overparameterized_faster_at_best_rates']}.",
        ]
        if summary.get("best_on_grid") and summary["best_on_grid"] != best:
            lines[-1] += (
                " On the paper's grid alone: "
                + ", ".join(
                    f"{g}: {b['base_lr']:g} ({b['last_tenth_loss']:.4f})" if b else f"{g}: every rate diverged"
                    for g, b in summary["best_on_grid"].items()
                )
                + "."
            )
    if reference is not None:
        lines += _beside(summary, reference)
    return "\n".join(lines) + "\n"


def _arguments(summary):
    """An Appendix C summary's settings ("arguments" in the summaries written before "config")."""
    return summary.get("config") or summary["arguments"]


def _budget(args):
    """ "1,000 steps" or "10 epochs": an Appendix C run's budget."""
    return f"{args['steps']:,} steps" if args.get("steps") else f"{args['epochs']:g} epochs"


def _run_setting(summary):
    """ "<budget>, seed <seed>" of an Appendix C summary."""
    args = _arguments(summary)
    return f"{_budget(args)}, seed {args.get('seed', tutorial.SEED)}"


def _beside(summary, reference):
    """Lines of a table of the claims that `summary` and `reference` both judged (same
    claim text): each one's verdict and measurement."""
    judged = {c["claim"]: c for c in reference.get("claims", [])}
    shared = [(judged[c["claim"]], c) for c in summary.get("claims", []) if c["claim"] in judged]
    if not shared:
        return []
    name = reference.get("figure", "appendix_c")
    lines = [
        "",
        f"The claims judged here and in `{name}` ({_run_setting(reference)}; here {_run_setting(summary)}):",
        "",
        f"| claim | `{name}` | here | changed |",
        "|---|---|---|---|",
    ]
    for before, after in shared:
        changed = "**yes**" if before["verdict"] != after["verdict"] else "no"
        lines.append(
            f"| {after['claim']} | {before['verdict']}: {before['measured']} | {after['verdict']}: {after['measured']} "
            f"| {changed} |"
        )
    return lines


def _base(figure):
    """The PAPER key output `figure` is a variant of (figure3 for figure3-1e6), or None."""
    return next((name for name in sorted(PAPER, key=len, reverse=True) if figure.startswith(name)), None)


def paper_place(figure, panel=""):
    """Where a claim of output `figure` is in the paper, e.g. "Fig. 3 (abalone)"."""
    base = _base(figure)
    if base is None:
        return figure
    variant = figure[len(base) :].strip("-")
    return PAPER[base] + (f" {panel}" if panel else "") + (f" ({variant})" if variant else "")


def _minutes(seconds):
    return f"{seconds / 60:,.1f} min" if seconds >= 60 else f"{seconds:,.0f} s"


CLAIMS_TABLE = "claims_table.md"  # OUT's full claims table
WHY_TWO_VERDICTS = (
    'A "faster" claim is judged twice. The threshold verdict compares the iterations each '
    "family's best rate on the paper's grid needs to reach the figure's level (the paper's protocol). "
    "The speed-up verdict compares the times to every level of relative excess with each family's rate "
    "tuned to within a factor 1.2 (`tfovp.tuning`), at the tightest level either settles below: a coarse grid "
    "can hold one family far below its usable rate, and one level can hide what happens at the next, so "
    "the two may differ; where they do, the speed-up verdict is the one to trust."
)


def _paper_order(rows):
    """Claim rows sorted into the paper's order of figures (PAPER's), each figure's rows
    kept in their order."""
    order = list(PAPER)

    def key(row):
        base = _base(row["figure"])
        return (order.index(base) if base else len(order), row["figure"])

    return sorted(rows, key=key)


def _commands(rows):
    return "; ".join(f"`{command}`" for command in dict.fromkeys(row.get("command", "") for row in rows))


def _summary(out, figure):
    """The JSON of output `figure`; a figure judged over seeds ("figure3-seeds") reports the
    seeds study's (seeds.json)."""
    path = pathlib.Path(out) / f"{figure}.json"
    if not path.is_file() and figure.endswith("-seeds"):
        path = pathlib.Path(out) / "seeds.json"
    return read_summary(path, ()) if path.is_file() else {}


def _training_time(summary):
    """Training time of everything an output reports: its curves, and Figure 5's MNIST runs."""
    seconds = summary.get("training_seconds", summary.get("elapsed_seconds"))
    mnist = sum(model.get("seconds", 0.0) for model in (summary.get("mnist") or {}).values())
    return "–" if seconds is None else _minutes(seconds + mnist)


def _plot(out, figure, link):
    return f"[{figure}.png]({link}/{figure}.png)" if (pathlib.Path(out) / f"{figure}.png").is_file() else "–"


def figures_table(out, link):
    """The README's results table: one row per figure or study of `out`/claims.json, in
    its order: where it is in the paper, its claims' verdict counts, the command, its
    training time and machine, its plot, and a link to the full claims table."""
    by_figure = {}
    for row in _paper_order(ClaimsFile(out).read()):
        by_figure.setdefault(row["figure"], []).append(row)
    lines = [
        "| output | paper | PASS | FAIL | INCONCLUSIVE | command | training time | machine | plot |",
        "|---|---|---:|---:|---:|---|---:|---|---|",
    ]
    for figure, rows in by_figure.items():
        counts = [sum(row["verdict"] == verdict for row in rows) for verdict in ("PASS", "FAIL", "INCONCLUSIVE")]
        summary = _summary(out, figure)
        machine = summary.get("machine") or {}
        where = ", ".join(
            str(part)
            for part in (machine.get("cpu_model"), machine.get("cpu_count") and f"{machine['cpu_count']} cores")
            if part
        )
        lines.append(
            f"| [{figure}]({link}/{CLAIMS_TABLE}#{figure}) | {paper_place(figure)} | "
            f"{' | '.join(map(str, counts))} | {_commands(rows)} | {_training_time(summary)} | "
            f"{where or '–'} | {_plot(out, figure, link)} |"
        )
    return "\n".join(lines) + "\n"


def claims_table(out, link):
    """The full claims table: per figure, one row per claim of `out`/claims.json with the
    threshold verdict and, for a "faster" claim, its speed-up verdict as a second column
    (the "(speed-up)" row of the same claim), what was measured, the command, the training
    time and the plot (linked as `link`/<figure>.png)."""
    rows = _paper_order(ClaimsFile(out).read())
    speed_ups = {
        (row["figure"], row["claim"][: -len(SPEED_UP)]): row for row in rows if row["claim"].endswith(SPEED_UP)
    }
    paired = {(row["figure"], row["claim"]) for row in rows}
    lines = [
        "# Every claim: the threshold verdict and the speed-up verdict",
        "",
        f"Generated from `claims.json` by `python -m reproduce.report`; never edited by hand. {WHY_TWO_VERDICTS}",
    ]
    figure = None
    for row in rows:
        if row["claim"].endswith(SPEED_UP) and (row["figure"], row["claim"][: -len(SPEED_UP)]) in paired:
            continue  # in its threshold claim's row
        if row["figure"] != figure:
            figure = row["figure"]
            summary = _summary(out, figure)
            lines += [
                "",
                f"## {figure}",
                "",
                f"{paper_place(figure)} · {_commands(r for r in rows if r['figure'] == figure)} · training time "
                f"{_training_time(summary)} · {_plot(out, figure, link)}",
                "",
                "| claim | threshold verdict | speed-up verdict (tuned) | measured |",
                "|---|---|---|---|",
            ]
        speed_up = speed_ups.get((row["figure"], row["claim"]))
        threshold = "–" if row["claim"].endswith(SPEED_UP) else f"**{row['verdict']}**"
        tuned = f"**{row['verdict']}**" if row["claim"].endswith(SPEED_UP) else "–"
        measured = row["measured"]
        if speed_up is not None:
            tuned, measured = f"**{speed_up['verdict']}**", f"{measured}; speed-up: {speed_up['measured']}"
        claim = row["claim"] + (f" ({row['panel']} panel)" if row.get("panel") else "")
        if row["figure"] == "peer_2024":
            claim += f" ({row['setting'].split(',')[0]})"
        lines.append(f"| {claim} | {threshold} | {tuned} | {measured} |")
    return "\n".join(lines) + "\n"


def verdict_count(out):
    """The one-screen count of OUT/claims.json's rows and verdicts (between the count
    markers of OUT/README.md)."""
    import collections

    rows = ClaimsFile(out).read()
    counted = collections.Counter(row["verdict"] for row in rows)
    return (
        f"{len(rows)} claim rows in `claims.json` ({counted['PASS']} PASS, {counted['FAIL']} FAIL, "
        f"{counted['INCONCLUSIVE']} INCONCLUSIVE), each judged by code with a criterion fixed before its run; "
        "a criterion changed since is applied to the committed runs by `python -m reproduce.rejudge`. Every "
        "claim in one table: `claims_table.md`."
    )


def replace_between(path, begin, end, body):
    """Replace the text between the markers of file `path` with `body`; False if the
    file lacks them."""
    with locked(path):
        text = pathlib.Path(path).read_text()
        if begin not in text or end not in text:
            return False
        head, rest = text.split(begin, 1)
        _, tail = rest.split(end, 1)
        atomic_write_text(path, f"{head}{begin}\n\n{body}\n{end}{tail}")
    return True


FIGURE_KEYS = ("figure", "config", "versions", "machine", "elapsed_seconds", "curves", "claims")
APPENDIX_C_KEYS = ("versions", "machine", "elapsed_seconds", "best")  # best_on_grid: from the refinement on


def read_summary(path, keys):
    """A run's JSON summary; ValueError naming the file if it cannot be read or lacks a key
    the report needs (checked for every input before anything is written)."""
    try:
        summary = json.loads(pathlib.Path(path).read_text())
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: cannot be read ({str(error).splitlines()[0]}); rerun its command") from None
    try:
        RunSummary.from_json(summary)  # the envelope every output writes
    except ValueError as error:
        raise ValueError(f"{path}: {error}; rerun its command") from None
    missing = [k for k in keys if k not in summary]
    if missing:
        raise ValueError(f"{path}: lacks {', '.join(missing)}; rerun its command")
    return summary


STUDIES = ("theorem2", "section7", "acceleration", "blog_l4")  # stems whose outputs get a generic page
OWN_PAGES = ("acceleration-seeds",)  # studies among them that write their own page (their module's tables)
STUDY_KEYS = ("figure", "command", "versions", "machine", "elapsed_seconds")


def study_section(summary, out):
    """A study's page body: its command, machine, versions and times, its plot, the
    acceleration map's speed-ups (if it is one) and the verdicts of its claims."""
    v, m, name = summary["versions"], summary["machine"], summary["figure"]
    training = summary.get("training_seconds")
    lines = [
        f"### {name}",
        "",
        f"`{summary['command']}` · wall time of the invocation that wrote it {summary['elapsed_seconds']:,.0f} s"
        + ("" if training is None else f" ({training:,.0f} s of training)")
        + f" · {m['processor']}, {m['cpu_count']} cores · Python {v['python']}, TensorFlow {v['tensorflow']}, "
        f"Keras {v['keras']}",
    ]
    if (pathlib.Path(out) / f"{name}.png").is_file():
        lines += ["", f"![{name}]({name}.png)"]
    if "settings" in summary and "config" in summary:
        lines += ["", *_map_lines(summary), "", *tally_lines(summary)]
        if one_run_rows(summary):
            lines += ["", *one_run_lines(summary)]
    if summary.get("claims"):
        lines += ["", "| claim | criterion | measured | verdict |", "|---|---|---|---|"]
        lines += [
            f"| {c['claim']} | {c['criterion']} | {c['measured']} | **{c['verdict']}** |" for c in summary["claims"]
        ]
    return "\n".join(lines) + "\n"


def pages(out):
    """{output name: its generated section} for every figure, Appendix C run and study
    (`STUDIES`) of `out`."""
    out = pathlib.Path(out)
    sections = {}
    names = ("figure2", "figure3", "figure4", "figure5", "figure3-abalone")
    others = sorted(p.stem for p in out.glob("figure*.json") if p.stem not in names)  # e.g. figure3-1e6
    for name in (*names, *others):
        path = out / f"{name}.json"
        if path.is_file():
            sections[name] = figure_section(read_summary(path, FIGURE_KEYS))
    summaries = outputs.summary_files(out, "appendix_c*.json")
    reference = out / "appendix_c.json"
    reference = read_summary(reference, APPENDIX_C_KEYS) if reference.is_file() else None
    for path in sorted(summaries, key=lambda p: (p.stem != "appendix_c", p.stem)):
        if path.with_suffix(".csv").is_file():
            with open(path.with_suffix(".csv")) as handle:
                table = list(csv.DictReader(handle))
            if path.stem == "appendix_c":
                sections[path.stem] = appendix_c_section(reference, table)
            else:
                sections[path.stem] = appendix_c_section(read_summary(path, APPENDIX_C_KEYS), table, reference)
    for path in sorted(p for stem in STUDIES for p in out.glob(f"{stem}*.json")):
        if not path.stem.startswith(OWN_PAGES):
            sections[path.stem] = study_section(read_summary(path, STUDY_KEYS), out)
    return sections


def build(out):
    """Every generated section of `out`, one after the other."""
    return "\n".join(pages(out).values())


def _page_parts(name, section):
    head = (
        f"# {name}: the committed run\n\nWhat the run shows is written by hand between the findings markers; the "
        f"rest is generated from `{name}.json` (and its CSV) by `python -m reproduce.report`. Every claim: "
        f"`{CLAIMS_TABLE}`; the summary: `README.md`."
    )
    return head, section.split("\n", 1)[1] if section.startswith("### ") else section


def page(name, section, kept=""):
    """The text of page `name`.md of one output: a title, what the run shows (`kept`,
    hand-written: `reproduce.study.findings`), then its generated section."""
    head, body = _page_parts(name, section)
    return findings.compose(head, kept, body)


def write_page(out, name, section):
    """Write OUT/`name`.md (`page`), keeping its findings as they stand."""
    findings.write_page(pathlib.Path(out) / f"{name}.md", *_page_parts(name, section))


def page_index(sections):
    """The list of per-output pages that README.md's report block holds."""
    return (
        "One page per figure and study: what the run shows, then what is generated from its JSON (command, "
        "machine, versions, settings, per curve the selected rate, the iterations to each level, the diverged and "
        "stalled rates, the tuned rate, and the verdicts); the sensitivity study, the 2024 student reproduction "
        "and the map over seeds write their own (`sensitivity.md`, `peer_2024.md`, "
        "`acceleration-seeds-deciding-1e5.md`):\n\n" + "\n".join(f"- [`{name}`]({name}.md)" for name in sections) + "\n"
    )


def main(argv=None):
    parser = ArgumentParser(prog="python -m reproduce.report", description=__doc__)
    parser.add_argument(
        "--out",
        default="results",
        metavar="DIR",
        help="the folder whose JSON files are read and whose README.md is updated (default: results)",
    )
    parser.add_argument(
        "--readme",
        default=None,
        metavar="FILE",
        help="the project README whose results table is regenerated, if it has the claims markers (default: "
        "README.md when --out is ./results, none otherwise: a scratch folder leaves the project README alone)",
    )
    args = parser.parse_args(argv)
    readme = pathlib.Path(args.out) / "README.md"
    if not pathlib.Path(args.out).is_dir():
        parser.error(f"--out {args.out}: no such folder")
    committed = pathlib.Path(args.out).resolve() == pathlib.Path("results").resolve()
    top = pathlib.Path(args.readme or ("README.md" if committed else os.devnull))
    link = os.path.relpath(args.out, top.parent)
    try:  # every input is read and checked before anything is written
        sections, tuned = pages(args.out), tuned_tables(args.out)
        claims = (pathlib.Path(args.out) / "claims.json").is_file()
        table = figures_table(args.out, link) if claims else None
        full = claims_table(args.out, ".") if claims else None
    except (ValueError, StudyError) as error:
        parser.error(str(error))
    if not readme.is_file():
        atomic_write_text(readme, f"# Results\n\n{BEGIN}\n{END}\n")
    for name, section in sections.items():
        write_page(args.out, name, section)
    if not replace_between(readme, BEGIN, END, page_index(sections)):
        parser.error(f"{readme} needs the markers {BEGIN} and {END}")
    replace_between(readme, TUNED_BEGIN, TUNED_END, tuned)
    if claims:
        replace_between(readme, COUNT_BEGIN, COUNT_END, verdict_count(args.out))
    replace_between(readme, BUDGET_BEGIN, BUDGET_END, budget_table(args.out))
    print(f"updated {readme}")
    if full is not None:
        atomic_write_text(pathlib.Path(args.out) / CLAIMS_TABLE, full)
        print(f"wrote {pathlib.Path(args.out) / CLAIMS_TABLE}")
    if top.is_file() and table is not None and replace_between(top, CLAIMS_BEGIN, CLAIMS_END, table):
        print(f"updated the results table of {top}")


if __name__ == "__main__":
    main()
