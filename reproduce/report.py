"""Regenerate the tables of results/README.md from the runs' own JSON files.

    python -m reproduce.report [--out results]

Replaces what lies between the `<!-- report:begin -->` and `<!-- report:end -->`
markers of OUT/README.md with, per figure: its command, machine, versions, wall time,
settings, and per curve the selected learning rate, iterations to each convergence
level, diverged and stalled rates; then the verdicts of claims.json.
"""

import argparse
import json
import pathlib

BEGIN, END = "<!-- report:begin -->", "<!-- report:end -->"
COMMANDS = {"figure2": "python -m reproduce.figure2", "figure3": "python -m reproduce.figure3",
            "figure4": "python -m reproduce.figure4", "figure5": "python -m reproduce.figure5",
            "figure3-abalone": "python -m reproduce.figure3 --dataset abalone"}


def _iterations(curve, level):
    levels = curve.get("iterations_to_levels") or {}
    value = levels.get(str(level))
    return "–" if value is None else f"{value:,}"


def _rates(values):
    return ", ".join(f"{v:g}" for v in values) or "none"


def figure_section(summary):
    c, v, m = summary["config"], summary["versions"], summary["machine"]
    name = summary["figure"]
    lines = [
        f"### {name}",
        "",
        f"`{COMMANDS.get(name, name)}` (all of them: `python -m reproduce.all`) · {c['dataset']}, "
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
        "| curve | best lr | it. to 0.5 | it. to 0.2 | it. to 0.1 | it. to 0.01 | final rel. excess | diverged lrs | edge |",
        "|---|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for label, curve in summary["curves"].items():
        final = curve["final_relative_excess"]
        edge = curve["at_edge"] or ""
        if edge and "extended_grid" in curve:
            wider = curve["extended_grid"]
            edge += f" (extended grid: best {wider['best_learning_rate']}, it. to level " \
                    f"{wider['iterations_to_level'] if wider['iterations_to_level'] is not None else '–'})"
        lines.append(
            f"| {label} | {curve['best_learning_rate'] if curve['best_learning_rate'] is not None else 'all diverged'} | "
            f"{_iterations(curve, 0.5)} | {_iterations(curve, 0.2)} | {_iterations(curve, 0.1)} | "
            f"{_iterations(curve, 0.01)} | {'–' if final is None else f'{final:.3g}'} | "
            f"{_rates(curve['diverged_rates'])} | {edge} |")
    lines += ["", "| claim | criterion | measured | verdict |", "|---|---|---|---|"]
    for claim in summary["claims"]:
        lines.append(f"| {claim['claim']} | {claim['criterion']} | {claim['measured']} | **{claim['verdict']}** |")
    return "\n".join(lines) + "\n"


def build(out):
    out = pathlib.Path(out)
    sections = []
    for name in ("figure2", "figure3", "figure4", "figure5", "figure3-abalone"):
        path = out / f"{name}.json"
        if path.is_file():
            sections.append(figure_section(json.loads(path.read_text())))
    return "\n".join(sections)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="results")
    args = parser.parse_args(argv)
    readme = pathlib.Path(args.out) / "README.md"
    text = readme.read_text() if readme.is_file() else f"# Results\n\n{BEGIN}\n{END}\n"
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{readme} needs the markers {BEGIN} and {END}")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(f"{head}{BEGIN}\n\n{build(args.out)}\n{END}{tail}")
    print(f"updated {readme}")


if __name__ == "__main__":
    main()
