"""Compare two results folders (two machines, two versions, two settings): for every
figure both hold, each curve's best learning rate and iterations to the level, and every
claim's verdict, printed as Markdown tables of what differs.

    python -m reproduce.compare OLD_FOLDER NEW_FOLDER [--figures figure2,figure3,...]

For example, the committed results of an earlier commit against the current ones:
`git archive COMMIT results | tar -x -C /tmp/old && python -m reproduce.compare
/tmp/old/results results`.
"""

import json
import pathlib
import sys

from reproduce.study.claims import fmt_iterations
from tfovp.cli import ArgumentParser

FIGURES = ("figure2", "figure3", "figure4", "figure5", "figure3-abalone")


def _load(folder, figure):
    path = pathlib.Path(folder) / f"{figure}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _machine(summary):
    machine, versions = summary["machine"], summary["versions"]
    cpu = ", ".join(str(machine[k]) for k in ("cpu_model", "simd") if machine.get(k)) or machine["processor"]
    return f"{cpu}, {machine['cpu_count']} cores, TensorFlow {versions['tensorflow']}"


def _rate(value):
    return "all diverged" if value is None else f"{value:g}"


def curve_rows(old, new):
    """(curve, old best lr, new best lr, old iterations, new iterations) where they differ."""
    rows = []
    for name, before in old["curves"].items():
        after = new["curves"].get(name)
        if after is None:
            continue
        pair = (
            (before["best_learning_rate"], after["best_learning_rate"]),
            (before["iterations_to_level"], after["iterations_to_level"]),
        )
        if pair[0][0] != pair[0][1] or pair[1][0] != pair[1][1]:
            rows.append(
                (name, _rate(pair[0][0]), _rate(pair[0][1]), fmt_iterations(pair[1][0]), fmt_iterations(pair[1][1]))
            )
    return rows


def claim_rows(old, new):
    """(claim, old verdict, new verdict, old measured, new measured) of every shared claim."""
    before = {c["claim"]: c for c in old["claims"]}
    return [
        (c["claim"], before[c["claim"]]["verdict"], c["verdict"], before[c["claim"]]["measured"], c["measured"])
        for c in new["claims"]
        if c["claim"] in before
    ]


def compare(old_folder, new_folder, figures=FIGURES):
    """The comparison as Markdown lines."""
    lines = []
    for figure in figures:
        old, new = _load(old_folder, figure), _load(new_folder, figure)
        if old is None or new is None:
            continue
        curves, claims = curve_rows(old, new), claim_rows(old, new)
        changed = [row for row in claims if row[1] != row[2]]
        lines += [
            f"### {figure}",
            "",
            f"Old: {_machine(old)}. New: {_machine(new)}. "
            f"{len(old['curves']) - len(curves)} of {len(old['curves'])} curves have the same best rate and "
            f"iterations to the level; {len(claims) - len(changed)} of {len(claims)} verdicts are the same.",
            "",
        ]
        if curves:
            lines += [
                "| curve | best lr (old) | best lr (new) | it. to level (old) | it. to level (new) |",
                "|---|---:|---:|---:|---:|",
            ]
            lines += ["| " + " | ".join(row) + " |" for row in curves] + [""]
        if changed:
            lines += [
                "| claim | verdict (old) | verdict (new) | measured (old) | measured (new) |",
                "|---|---|---|---|---|",
            ]
            lines += ["| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in changed] + [""]
    return lines


def main(argv=None):
    parser = ArgumentParser(prog="python -m reproduce.compare", description=__doc__)
    parser.add_argument("old", metavar="OLD_FOLDER", help="a results folder (the reference)")
    parser.add_argument("new", metavar="NEW_FOLDER", help="a results folder to compare with it")
    parser.add_argument(
        "--figures",
        default=",".join(FIGURES),
        metavar="A,B,...",
        help=f"figures to compare, comma-separated (default: {','.join(FIGURES)})",
    )
    args = parser.parse_args(argv)
    for folder in (args.old, args.new):
        if not pathlib.Path(folder).is_dir():
            parser.error(f"{folder}: no such folder")
    figures = [f for f in args.figures.split(",") if f]
    unknown = sorted(set(figures) - set(FIGURES))
    if unknown:
        parser.error(f"--figures {args.figures}: unknown {', '.join(unknown)}; expected some of {', '.join(FIGURES)}")
    print("\n".join(compare(args.old, args.new, figures)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
