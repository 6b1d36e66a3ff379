"""The committed results judge to their committed claims: the criteria of
`reproduce.study.criteria`, applied to the committed data (the figures' CSV and JSON, the
MNIST per-step CSVs, the Appendix C table), give the verdicts and measurements written
in results/claims.json. No training; a check that results/ is internally consistent."""

import json
import pathlib
import re

import numpy as np
import pandas as pd
import pytest

from reproduce.study import criteria, outputs
from reproduce.study.provenance import RunSummary
from tfovp import convergence

pytestmark = pytest.mark.integration

RESULTS = pathlib.Path(__file__).resolve().parent.parent / "results"


SPEEDUP = criteria.SPEED_UP  # the claims judged on the speed-up curves (test_speedup_claims)


def _claims(figure, speedup=False):
    rows = json.loads((RESULTS / "claims.json").read_text())
    return [
        (r["claim"], r["measured"], r["verdict"])
        for r in rows
        if r["figure"] == figure and r["claim"].endswith(SPEEDUP) == speedup
    ]


def _json(name):
    path = RESULTS / f"{name}.json"
    if not path.is_file():
        pytest.fail(f"{path} is not committed (README.md and results/README.md describe it)")
    summary = json.loads(path.read_text())
    RunSummary.from_json(summary)  # the envelope of every output
    return summary


def _speeds(summary):
    return {
        label: criteria.Speed(c["iterations_to_level"], c["final_relative_excess"])
        for label, c in summary["curves"].items()
    }


def _rows(claims):
    return [(c.claim, c.measured, c.verdict) for c in claims]


@pytest.mark.parametrize("figure", ["figure3", "figure3-abalone"])
def test_figure3(figure):
    summary = _json(figure)
    speeds = {
        (1 if label.startswith("linear") else int(label.split("-")[1].split()[0]), float(label[-2])): speed
        for label, speed in _speeds(summary).items()
    }
    assert _rows(criteria.figure3(speeds, summary["claims"][0]["setting"], figure)) == _claims(figure)


def test_figure4():
    summary = _json("figure4")
    from reproduce import figure4

    speeds = {label.rsplit(" (", 1)[0]: speed for label, speed in _speeds(summary).items()}
    assert sorted(figure4.ROLES.values()) == sorted(label for label, _, _ in figure4.LEFT + figure4.RIGHT)
    assert _rows(figure4.curve_claims(4, speeds, summary["claims"][0]["setting"])) == _claims("figure4")


def test_figure2_width_and_depth():
    summary = _json("figure2")
    speeds = _speeds(summary)
    rows = []
    for p in (2, 4):
        for n in (2, 3):
            by_width = {w: speeds[f"depth-{n} net, width {w} (l{p})"] for w in (1, 10, 100)}
            rows.append(criteria.figure2_width(p, n, by_width, summary["claims"][0]["setting"]))
    rows.append(
        criteria.figure2_depth(speeds["depth-3 net (l4)"], speeds["depth-2 net (l4)"], summary["claims"][0]["setting"])
    )
    committed = _claims("figure2")
    assert all(row in committed for row in _rows(rows))


def _seed_summaries(figure, budget, level):
    """SeedSummary per curve of a figure, rebuilt from its CSV (the grid's rates; each
    rate's losses carried forward between its rows, which keep every step where the
    curve crosses a level for good; a rate whose curve stops before the budget diverged)."""
    frame = outputs.read_curves(RESULTS / f"{figure}.csv")
    frame = frame[frame["tuning"] == "grid"]
    out = {}
    for curve, rows in frame.groupby("curve", sort=False):
        steps = np.unique(rows["step"])
        rates = sorted(rows["learning_rate"].unique())
        losses = np.full((steps.size, len(rates)), np.nan)
        for c, rate in enumerate(rates):
            one = rows[rows["learning_rate"] == rate]
            carried = pd.Series(one["loss"].to_numpy(), index=one["step"]).reindex(steps).ffill()
            losses[:, c] = carried.where(steps <= one["step"].max())
        diverged = np.array([rows[rows["learning_rate"] == r]["step"].max() < budget for r in rates])
        optimum = float(rows["optimum"].iloc[0])
        out[curve] = convergence.summarize_rates(steps, losses, optimum, rates, diverged, level)
    return out


def test_figure5_left():
    from reproduce import figure5

    summary = _json("figure5")
    config = summary["config"]
    if "left" not in config["panels"]:
        pytest.fail("the committed Figure 5 lacks its left panel (README.md reports it)")
    summaries = _seed_summaries("figure5", config["steps"], config["level"])
    setting = next(c["setting"] for c in summary["claims"] if c.get("panel") == "left")
    claims = figure5.left_claims(4.0, summaries, config["steps"], setting)
    assert _rows(claims) == [row for row in _claims("figure5") if not row[0].startswith("MNIST")]


def test_figure5_mnist():
    """The MNIST claims from the per-step CSVs of every run and the test errors of the
    JSON, through the panel's own `claims` (seeds, variants, tracking)."""
    from reproduce import mnist_panel

    summary = _json("figure5")
    models = summary.get("mnist") or {}
    if "test_errors" not in models.get("original", {}):
        pytest.fail("the committed MNIST panel lacks the test errors of its seeds (README.md reports them)")
    committed = [row for row in _claims("figure5") if row[0].startswith("MNIST")]
    setting = next(row["setting"] for row in json.loads((RESULTS / "claims.json").read_text())
                   if row["figure"] == "figure5" and row["claim"].startswith("MNIST"))  # fmt: skip
    seeds = [int(s) for s in setting.split("seeds ")[1].split(", ")]  # the panel may come from another run
    earlier = mnist_panel.earlier_outputs(RESULTS)
    results = {name: [earlier[name, seed] for seed in seeds[: model["seeds"]]] for name, model in models.items()}
    assert _rows(mnist_panel.claims(results, setting)) == committed


@pytest.mark.parametrize(
    "figure", ["figure3", "figure3-abalone", "figure3-1e6", "figure4", "figure4-1e6", "figure5", "figure5-1e6"]
)
def test_speedup_claims(figure):
    """The speed-up claims from the speed-ups stored in the figure's JSON: the pairs named
    in each claim's measurement, judged by `criteria.speedup_claim`."""
    summary = _json(figure)
    stored = summary.get("speedup") or {}
    committed = _claims(figure, speedup=True)
    if not committed:
        pytest.fail(f"{figure} has no speed-up claims (every figure with a faster claim is judged both ways)")
    for claim, measured, verdict in committed:
        p = claim.split(":")[0].lstrip("l")
        pairs = [part.split(":")[0] for part in measured.split("; ") if " vs " in part.split(":")[0]]
        comparisons = [criteria.Comparison.from_json(stored[f"{pair} (l{p})"], f"{pair} (l{p})") for pair in pairs]
        kwargs = {"not_faster": True} if "not faster" in claim else {"factor": criteria.FASTER_FACTOR}
        setting = summary["claims"][0]["setting"]
        row = criteria.speedup_claim(figure, claim, comparisons, setting=setting, **kwargs)
        assert (row.claim, row.measured, row.verdict) == (claim, measured, verdict)


@pytest.mark.parametrize("stem", sorted(p.stem for p in outputs.summary_files(RESULTS, "appendix_c*.json")))
def test_appendix_c(stem):
    summary = _json(stem)
    table = pd.read_csv(RESULTS / f"{stem}.csv")
    setting = summary["claims"][0]["setting"]
    claims = []
    if summary["best"]:

        def best(rows):
            chosen = []
            for group in ("original", "overparameterized"):
                finished = rows[(rows["group"] == group) & rows["diverged_at"].isna()]
                row = finished.sort_values("last_tenth_loss").iloc[0]
                chosen.append((row["base_lr"], row["last_tenth_loss"]))
            return chosen

        rho = summary["config"].get("rho")  # runs from before the refinement have none
        refined = {"on_grid": best(table[table["rates"] == "grid"]), "rho": rho} if rho else {}
        claims += criteria.appendix_c(*best(table), setting=setting, figure=stem, **refined)
    stds = table[table["group"] == "overparameterized, init std"]
    if "grids" in summary["config"] and len(stds):  # runs from before the init-std claims have none
        originals = table[table["group"].str.startswith("original") & (table["base_lr"] == criteria.STD_GRID_LR)]
        originals_grid = _original_runs(summary, table)
        for quantity in criteria.APPENDIX_C_QUANTITIES:
            by_std = dict(zip(stds["init_std"], stds[quantity]))
            lowest = None if originals_grid is None else originals_grid.sort_values(quantity).iloc[0]
            pair = None if lowest is None else (lowest["base_lr"], lowest[quantity])
            claims += criteria.appendix_c_stds(originals[quantity].iloc[0], by_std, quantity, setting, stem, pair)
    assert _rows(claims) == _claims(stem)


def _original_runs(summary, table):
    """The original model's rate-grid runs that did not diverge at this run's budget and
    seed: its own, else the committed Appendix C run's with a rate grid and the same steps,
    epochs and seed; None if there is none."""
    config = summary["config"]
    tables = [table] if "lr" in config["grids"] else []
    for path in sorted(RESULTS.glob("appendix_c*.json")):
        other = json.loads(path.read_text()).get("config", {}) if not path.stem.endswith("_runs") else {}
        same = all(other.get(k) == config.get(k) for k in ("steps", "epochs", "seed"))
        if not tables and "lr" in other.get("grids", ()) and same:
            tables.append(pd.read_csv(path.with_suffix(".csv")))
    if not tables:
        return None
    return tables[0][(tables[0]["group"] == "original") & tables[0]["diverged_at"].isna()]


def test_readme_results_table_and_the_claims_table_are_generated_from_claims_json():
    from reproduce import report
    from reproduce.study import findings

    readme = (RESULTS.parent / "README.md").read_text()
    table = readme.split(report.CLAIMS_BEGIN, 1)[1].split(report.CLAIMS_END, 1)[0]
    stale = "stale: run python -m reproduce.report --out results"
    assert table.strip() == report.figures_table(RESULTS, "results").strip(), f"README.md's results table is {stale}"
    for name, section in report.pages(RESULTS).items():
        kept = findings.findings_of(RESULTS / f"{name}.md")
        assert (RESULTS / f"{name}.md").read_text() == report.page(name, section, kept), f"results/{name}.md is {stale}"
    full = (RESULTS / report.CLAIMS_TABLE).read_text()
    assert full == report.claims_table(RESULTS, "."), f"results/{report.CLAIMS_TABLE} is {stale}"
    rows = json.loads((RESULTS / "claims.json").read_text())
    assert sum(f"| {row['claim']}" in full for row in rows if not row["claim"].endswith(report.SPEED_UP)) == sum(
        not row["claim"].endswith(report.SPEED_UP) for row in rows
    )  # every threshold claim has its row (the speed-up ones share their claim's row)


def test_the_one_screen_summary_counts_the_committed_claim_rows():
    """results/README.md's hand-written count of claim rows and verdicts is that of claims.json."""
    import collections
    import re

    text = (RESULTS / "README.md").read_text()
    found = re.search(r"(\d+) claim rows in `claims.json` \((\d+) PASS, (\d+) FAIL, (\d+) INCONCLUSIVE\)", text)
    assert found, "results/README.md lost its one-screen count of the claim rows"
    verdicts = collections.Counter(r["verdict"] for r in json.loads((RESULTS / "claims.json").read_text()))
    counted = (sum(verdicts.values()), verdicts["PASS"], verdicts["FAIL"], verdicts["INCONCLUSIVE"])
    assert tuple(int(n) for n in found.groups()) == counted, (
        f"results/README.md says {found.group(0)}; claims.json has {counted}"
    )


def test_committed_verdicts_are_those_of_the_current_criteria():
    """Every Figure 3, 4 and 5 (left) claim judged again from its committed files by the
    criteria as they are now (`reproduce.rejudge --check`) keeps its committed verdict: a
    criterion changed without `python -m reproduce.rejudge` fails here."""
    from reproduce import rejudge

    assert [change.line() for change in rejudge.run(RESULTS, check=True)] == []
    # Each seed's run of reproduce.seeds too (their claims feed the rows over the seeds).
    assert [change.line() for change in rejudge.run(RESULTS / "seeds", check=True)] == []


# ---------------------------------------------------------------- hand-written prose


SPEEDUP_QUOTE = re.compile(r"S(?:\([^)]*\))?\s*(?:=|>|<|≥|≤)\s*([0-9][0-9,]*(?:\.[0-9]+)?)")
NUMBER = re.compile(r"[0-9][0-9,]*(?:\.[0-9]+)?(?:e[-+]?[0-9]+)?")
THRESHOLDS = {1.0, 1.11, 2.0, 10.0}  # "S < 2", "S ≥ 10": a threshold quoted, not a measurement
FILE_REFERENCE = re.compile(r"`([a-z0-9_.-]+?)(?:_speedup|_runs)?\.(?:csv|json|md|png)`")


def _numbers(text):
    return {float(t.replace(",", "")) for t in NUMBER.findall(text)}


def _measured_values(text, tuned, grid):
    """The numbers of a claim's `measured` text: each comparison's tuned part, then its
    paper's-grid part."""
    for part in re.split(r"tuned[^;]*;|; (?=[a-z])", text):
        head, _, tail = part.partition("paper's grid")
        tuned |= _numbers(head)
        grid |= _numbers(tail)


def _speedup_values(stems):
    """(tuned, grid): every speed-up value of the outputs `stems`: the speed-up tables'
    columns (grid_* apart) and the numbers of their claim rows' measurements; for outputs
    without a speed-up table (Section 7, the blog, Appendix C) every number of their JSON."""
    tuned, grid = set(), set()
    for stem in stems:
        for path in (RESULTS / f"{stem}_speedup.csv", RESULTS / f"{stem}.csv"):
            if not path.is_file():
                continue
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
            for column in frame.columns:
                if column == "measured":
                    for text in frame[column]:
                        _measured_values(text, tuned, grid)
                elif "speedup" in column:
                    values = pd.to_numeric(frame[column], errors="coerce").dropna()
                    (grid if column.startswith("grid") else tuned).update(values.tolist())
        path = RESULTS / f"{stem}.json"
        if path.is_file():
            data = json.loads(path.read_text())
            if isinstance(data, dict):
                for row in data.get("claims", []):
                    _measured_values(row["measured"], tuned, grid)
                if not (RESULTS / f"{stem}_speedup.csv").is_file() and not stem.startswith(("figure", "acceleration")):
                    tuned |= _numbers(json.dumps(data))
    return tuned, grid


def _quoted_matches(quoted, pool):
    value = float(quoted.replace(",", ""))
    if value in THRESHOLDS:
        return True
    digits = len(quoted.split(".")[1]) if "." in quoted else 0
    return any(np.isfinite(v) and round(v, digits) == round(value, digits) for v in pool)


def _hand_written(path):
    """The hand-written prose of a results page: its findings block (README.md: all above
    the generated tables)."""
    text = path.read_text()
    if path.name == "README.md":
        return text.split("<!-- report:begin -->")[0]
    if "<!-- findings:begin -->" not in text:
        return ""
    return text.split("<!-- findings:begin -->")[1].split("<!-- findings:end -->")[0]


def _stale_speedup_quotes(path):
    """Every "S = x" (>, <, ≥, ≤) of a page's prose not found in its outputs: a tuned value
    unless its clause (back to the last '.', ';', '(', '[' or ']') names the grid or it is
    inside [...] (the pages' "tuned [grid]"), then a grid value. A page's outputs: those
    whose stem starts like the page's (figure3-1e6.md: figure3*), the files it names in
    backticks, and every output for README.md."""
    prose = _hand_written(path)
    if not prose:
        return []
    pattern = "*" if path.stem == "README" else path.stem.split("-")[0] + "*"
    stems = {p.stem for p in RESULTS.glob(f"{pattern}.json")} | {p.stem for p in RESULTS.glob(f"{pattern}.csv")}
    tuned, grid = _speedup_values(sorted(stems | set(FILE_REFERENCE.findall(prose))))
    stale = []
    for found in SPEEDUP_QUOTE.finditer(prose):
        before = prose[: found.start()]
        clause = re.split(r"\.\s|;|\(|\[|\]", before)[-1]
        bracketed = before.rfind("[") > before.rfind("]")
        pool = grid if ("grid" in clause or bracketed) else tuned
        if not _quoted_matches(found.group(1).rstrip(".,"), pool):
            where = prose[max(0, found.start() - 60) : found.end()].replace("\n", " ")
            stale.append(f"{path.name}: {found.group(0)!r} ({'grid' if pool is grid else 'tuned'}) in '…{where}'")
    return stale


@pytest.mark.parametrize("page", sorted(p.name for p in RESULTS.glob("*.md")))
def test_every_speedup_quoted_in_the_prose_is_in_the_data(page):
    """A speed-up the hand-written findings quote is one of the committed speed-ups, at the
    precision quoted, and a paper's-grid value is quoted as the grid's (the pages said
    "S < 0.65" for Figure 4 where the tuned S is 0.902, until 2026-12-06)."""
    assert _stale_speedup_quotes(RESULTS / page) == []


def test_the_prose_check_finds_a_stale_grid_value(tmp_path, monkeypatch):
    page = tmp_path / "figure4.md"
    page.write_text(
        "<!-- findings:begin -->\nDepth-3 GD is slower than AdaGrad (S = 0.902) [grid S < 0.652]; "
        "depth-3 GD stays slower (S < 0.65).\n<!-- findings:end -->\n"
    )
    stale = _stale_speedup_quotes(page)
    assert len(stale) == 1 and "'S < 0.65' (tuned)" in stale[0]


def test_the_sensitivity_pages_count_of_rows_the_new_rules_change_is_its_tables():
    """sensitivity.md's note on the rules of 2026-12-06 counts from sensitivity.csv: the
    'moves only late' PASS rows whose net never moved, and the tuned INCONCLUSIVE rows
    with an exact S below 2 beside an undecided part (both FAIL under the current rules)."""
    table = pd.read_csv(RESULTS / "sensitivity.csv", keep_default_na=False)
    late = table["claim"].str.contains("moves only late") & (table["verdict"] == "PASS")
    never = int((late & (table["measured"] == "best rate: not reached")).sum())

    def exact_tuned(text):
        return [
            float(s)
            for part in re.split(r"; (?=depth)", text)
            for s in re.findall(r"S = ([0-9.]+) at", part.split(" tuned")[0])
        ]

    undecided = table["claim"].str.endswith(SPEEDUP) & (table["verdict"] == "INCONCLUSIVE")
    refuted = sum(any(s < 2 for s in exact_tuned(text)) for text in table.loc[undecided, "measured"])
    page = (RESULTS / "sensitivity.md").read_text()
    assert (never, refuted, int(undecided.sum())) == (72, 2, 22)
    assert f"all {never} PASS rows" in page and f"{refuted} of the\n{int(undecided.sum())} INCONCLUSIVE rows" in page
