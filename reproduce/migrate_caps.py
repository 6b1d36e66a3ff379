"""Mark the capped tuned rates of acceleration-map outputs written before the tuning
recorded caps (before 2026-12-06), so that no capped time is read as exact.

    python -m reproduce.migrate_caps results/acceleration.csv [more.csv ...]

Those runs tuned with at most 3 grid-end extensions ×5 (`tfovp.tuning`, then), and their
outputs keep each level's tuned rate but not its bracket. The protocol fixes which rates
were the last tried on their side: a tuned rate equal to the grid's largest × 5³ (62.5 on
the paper's grid) had no rate tried above it, and one equal to the grid's smallest ÷ 5³
(8e-8) none below; any other tuned rate had a diverging or slower rate tried beyond it.
Each row gets `linear_capped` and `depth_capped` ("high", "low" or empty), its `kind`
read through `tfovp.speedup.with_caps` (a capped depth makes S a lower bound, a capped
linear model an upper bound, both INDEFINITE), and the map's JSON the same caps and kinds
per level (`baseline_capped`, `contender_capped`). Values are kept as written; a table
that already has the caps is refused.
"""

import json
import math
import pathlib

from tfovp.cli import ArgumentParser

OLD_EXTENSIONS = 3  # tfovp.tuning.MAX_EXTENSIONS before 2026-12-06
EXTENSION_FACTOR = 5.0


def cap_of(rate, grid):
    """ "high" / "low" if `rate` is the old protocol's last rate above / below `grid`, else None."""
    if rate is None or (isinstance(rate, float) and math.isnan(rate)):
        return None
    top, bottom = max(grid) * EXTENSION_FACTOR**OLD_EXTENSIONS, min(grid) / EXTENSION_FACTOR**OLD_EXTENSIONS
    if math.isclose(rate, top, rel_tol=1e-6):
        return "high"
    return "low" if math.isclose(rate, bottom, rel_tol=1e-6) else None


def migrate(path):
    """Mark the caps of map table `path` and of its JSON; returns the number of capped rows."""
    import pandas as pd

    from reproduce.study.outputs import write_csv, write_json
    from tfovp import speedup

    path = pathlib.Path(path)
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    if "depth_capped" in frame.columns or "lr_depth" not in frame.columns:
        raise ValueError(f"{path}: not a map table without caps (columns {list(frame.columns)})")
    summary = json.loads(path.with_suffix(".json").read_text())
    grid = [float(r) for r in summary["config"]["lrs"]]

    def rate(text):
        return None if text == "" else float(text)

    caps = {"linear": [cap_of(rate(r), grid) for r in frame["lr_linear"]]}
    caps["depth"] = [cap_of(rate(r), grid) for r in frame["lr_depth"]]
    kinds = []
    for kind, linear, depth in zip(frame["kind"], caps["linear"], caps["depth"]):
        value = speedup.SpeedUp(0.0, 0.0, 0.0, 1.0, kind)
        kinds.append(speedup.with_caps(value, linear, depth).kind)
    frame["kind"] = kinds
    at = frame.columns.get_loc("depth_near_edge") + 1
    frame.insert(at, "depth_capped", [c or "" for c in caps["depth"]])
    frame.insert(at, "linear_capped", [c or "" for c in caps["linear"]])
    for name, data in summary["settings"].items():
        for n, comparison in (data.get("comparisons") or {}).items():
            rows = frame.index[(frame["setting"] == name) & (frame["depth"] == str(n))]
            comparison["kind"] = [frame.at[i, "kind"] for i in rows]
            comparison["baseline_capped"] = [caps["linear"][i] for i in rows]
            comparison["contender_capped"] = [caps["depth"][i] for i in rows]
    write_csv(path, frame, float_format=None)
    write_json(path.with_suffix(".json"), summary)
    return sum(bool(a or b) for a, b in zip(caps["linear"], caps["depth"]))


def main(argv=None):
    parser = ArgumentParser(prog="python -m reproduce.migrate_caps", description=__doc__)
    parser.add_argument("tables", nargs="+", metavar="CSV", help="acceleration-map tables (<stem>.csv)")
    args = parser.parse_args(argv)
    for table in args.tables:
        try:
            capped = migrate(table)
        except (OSError, ValueError, KeyError) as error:
            parser.error(str(error))
        print(f"{table}: {capped} rows with a capped tuned rate")


if __name__ == "__main__":
    main()
