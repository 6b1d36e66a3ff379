"""Judge the linear figures' committed runs again by the current criteria, without training.

    python -m reproduce.rejudge [--out results] [--figures figure3,figure4-1e6]

For every <figure>.json of Figures 3, 4 and 5 (left panel) in OUT, with its tags and
datasets (figure3-1e6, figure3-abalone, ...): rebuild the measures its claims read from
its JSON and CSVs (`reproduce.study.stored`), judge them with the figure's own
`claims_of` (the code a fresh run calls); for every Appendix C output, judge its table
(<stem>.csv holds every run's row with every digit) with `appendix_c.claims_of`; and
replace the output's rows in
OUT/claims.json and OUT/claims.md and the claims of its JSON; <figure>_speedup.csv is
written again from the JSON's comparisons, so that it carries every column a fresh run
writes that the JSON holds (each tuned rate's bracket and cap). Figure 5's MNIST rows
are kept as they are. Prints every verdict that changed; `--check` changes nothing and exits
1 if a verdict would change (the committed results are up to date with the criteria when
it exits 0). Regenerate the pages with `python -m reproduce.report --out OUT` after it.
"""

import dataclasses
import json
import pathlib
import sys

from tfovp.cli import ArgumentParser

JUDGED = ("figure3", "figure4", "figure5", "appendix_c")  # the outputs whose claims are judged from their files


@dataclasses.dataclass(frozen=True)
class Change:
    """A claim whose verdict the current criteria give differently."""

    figure: str
    claim: str
    before: str
    after: str
    measured: str

    def line(self):
        return f"{self.figure}: {self.claim}: {self.before} -> {self.after} ({self.measured})"


def module_of(figure):
    import importlib

    return importlib.import_module(f"reproduce.{figure.split('-')[0]}")


def stems(out, figures=None):
    """The output stems in `out` whose claims can be judged again (all, or those named)."""
    found = sorted(p.stem for p in pathlib.Path(out).glob("*.json") if p.stem.split("-")[0] in JUDGED)
    found = [s for s in found if not s.endswith(("_runs", "_speedup")) and _judgeable(out, s)]
    if figures is None:
        return found
    unknown = [f for f in figures if f not in found]
    if unknown:
        raise ValueError(
            f"--figures {','.join(figures)}: no judged run {', '.join(unknown)} in {out} "
            f"(expected some of {', '.join(found) or 'none'})"
        )
    return list(figures)


def _read(out, stem):
    return json.loads(pathlib.Path(out, f"{stem}.json").read_text())


def _judgeable(out, stem):
    """A linear figure's JSON with its curves, or an Appendix C output with its table."""
    if stem.startswith("appendix_c"):
        return pathlib.Path(out, f"{stem}.csv").is_file()
    return "curves" in _read(out, stem)


def rejudge(out, stem):
    """(new claim rows of `stem`, the rows of its JSON they replace, its JSON, the
    measures: a `common.Measures`, or None for Appendix C) from OUT's files."""
    from reproduce.study.stored import StoredFigure, load_config

    module = module_of(stem)
    data = _read(out, stem)
    if stem.startswith("appendix_c"):
        rows = module.claims_of(module.stored_config(data), out, module.read_rows(pathlib.Path(out, f"{stem}.csv")))
        return rows, data["claims"], data, None
    config = load_config(module.Config, data)
    measures = StoredFigure(pathlib.Path(out, stem), config)
    rows = [dataclasses.replace(row, figure=stem) for row in module.claims_of(config, measures)]
    panel = {row.panel for row in rows}
    replaced = [r for r in data["claims"] if r.get("panel", "") in panel | {""}]
    return rows, replaced, data, measures


def write_speedup_table(out, stem, data, comparisons):
    """<stem>_speedup.csv from the JSON's comparisons and crossovers."""
    import pandas as pd

    from reproduce.study import outputs

    crossovers = {name: record.get("crossover") for name, record in data.get("speedup", {}).items()}
    rows, _ = outputs.speedup_table(comparisons, crossovers)
    outputs.write_csv(pathlib.Path(out, f"{stem}_speedup.csv"), pd.DataFrame(rows))


def changes(rows, replaced):
    """The `Change` of every row whose verdict differs from the row of the same claim."""
    before = {r["claim"]: r["verdict"] for r in replaced}
    return [
        Change(r.figure, r.claim, before.get(r.claim, "(new)"), r.verdict, r.measured)
        for r in rows
        if before.get(r.claim) != r.verdict
    ]


def run(out, figures=None, check=False):
    """Judge every stem of `stems(out, figures)` again; returns the list of `Change`s.
    Writes the new rows unless `check`."""
    from reproduce.study.claims import ClaimsFile
    from reproduce.study.outputs import write_json

    claims_file = ClaimsFile(out)
    claims_file.read()  # a corrupt claims file stops here, before anything is written
    found = []
    for stem in stems(out, figures):
        rows, replaced, data, measures = rejudge(out, stem)
        found += changes(rows, replaced)
        if check:
            continue
        same = [dataclasses.asdict(row) for row in rows] == replaced
        grid_verdicts = None if measures is None else measures.grid_verdicts
        if not same or (measures is not None and grid_verdicts != data.get("speedup_claims_on_grid")):
            panels = sorted({row.panel for row in rows} - {""}) or None
            claims_file.replace(stem, rows, data["command"], panels)
            kept = [r for r in data["claims"] if r not in replaced]
            data["claims"] = [dataclasses.asdict(row) for row in rows] + kept
            if measures is not None:
                data["speedup_claims_on_grid"] = grid_verdicts
            write_json(pathlib.Path(out, f"{stem}.json"), data)
        if measures is not None and measures.comparisons:
            write_speedup_table(out, stem, data, measures.comparisons)
    return found


def main(argv=None):
    parser = ArgumentParser(prog="python -m reproduce.rejudge", description=__doc__)
    parser.add_argument("--out", default="results", metavar="DIR", help="folder of the runs (default: results)")
    parser.add_argument(
        "--figures",
        default=None,
        metavar="NAMES",
        help="comma-separated output stems to judge (default: every Figure 3, 4 and 5 run in --out)",
    )
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a verdict would change")
    args = parser.parse_args(argv)
    if not pathlib.Path(args.out).is_dir():
        parser.error(f"--out {args.out}: no such folder")
    figures = None if args.figures is None else [f.strip() for f in args.figures.split(",") if f.strip()]
    try:
        found = run(args.out, figures, check=args.check)
    except ValueError as error:
        parser.error(str(error))
    for change in found:
        print(change.line())
    print(f"{len(found)} verdict(s) {'would change' if args.check else 'changed'}")
    if args.check and found:
        sys.exit(1)


if __name__ == "__main__":
    main()
