"""Appendix C: the MNIST tutorial's speed-up under other settings (PAPER Sec. 5).

1. Base learning rate in the paper's grid for the original and the overparameterized
   model, then refined for each model between its best grid rate and that rate's
   neighbours (their geometric means, round after round) until both neighbours are
   within `--rho` (1.5) of the best; the fastest of each (lowest mean minibatch loss
   over the last 10 % of the budget, diverged runs excluded) are compared
   (`reproduce.study.criteria.appendix_c`), the best on the paper's grid alone beside.
2. The overparameterized model with the init std of the new factors in
   {1e-3, 5e-3, 1e-2, 5e-2, 1e-1, 5e-1} at the tutorial's learning rate (paper: almost
   identical curves, all far faster than the baseline), judged on the printed loss and
   on its cross-entropy alone against the original model at the same rate
   (`reproduce.study.criteria.appendix_c_stds`).

Each row also holds the last-10 % means of the printed loss's two parts, the cross-entropy
and the L2 term, and the Frobenius norm of fc1's (product) kernel at the end: whether a
smaller init std is faster on the fit or only on the penalty.

Full runs (10 epochs each, 26 runs and about 6 refining ones) take hours on a CPU;
`--steps` shortens every run.

    python -m reproduce.appendix_c [--steps 500] [--lrs ...] [--rho 1.5] [--stds ...] [--grids lr,std] [--seed N]
        [--tag NAME] [--out results] [--resume] [--cluster ray [--address HOST:6379]]

`--seed` changes the tutorial's graph seed (66478) for every run; `--grids std` runs only
the init-std grid and its baseline; `--tag seed1` writes appendix_c-seed1.* with its own
claim rows.
"""

import dataclasses
import json
import math
import pathlib
import time

import numpy as np

from mnist_tutorial import config as tutorial
from reproduce import cli, mnist_panel
from reproduce.study import criteria, outputs
from reproduce.study.claims import ClaimsFile, verdict
from reproduce.study.cluster import run_units
from reproduce.study.plotting import MinibatchCurve, MinibatchPanel, plot_panels
from reproduce.study.progress import MNIST_STEP, job_scope
from reproduce.study.provenance import RunSummary
from reproduce.study.runs import PAPER_GRID
from tfovp.files import locked

MODELS = ("original", "overparameterized")
STDS = (1e-3, 5e-3, 1e-2, 5e-2, 1e-1, 5e-1)
STD_GROUP = "overparameterized, init std"
BASELINE_GROUP = "original, baseline of the init-std grid"  # when the rate grid does not hold it
GRIDS = ("lr", "std")
RHO = 1.5  # coarser than the linear figures' 1.2: a run of 10 epochs costs 7-11 CPU minutes here
GRID = "grid"
RUNS_SUFFIX = outputs.RUN_RECORDS_SUFFIX  # each finished run's CompactRun, committed as it lands
RECORD_EVERY = 100  # steps between the points of a CompactRun (the validation error's spacing)


@dataclasses.dataclass
class Config(cli.ClusterConfig):
    steps: int | None = cli.setting(None, "steps of 64 images per run (>= 1; default: --epochs)")
    epochs: float = cli.setting(10.0, "epochs per run when --steps is not given (> 0; the tutorial's 10)")
    lrs: tuple[float, ...] = cli.setting(PAPER_GRID, "base learning rates tried for both models (> 0)")
    rho: float = cli.setting(
        RHO,
        "refine each model's best base rate between its grid neighbours until they are at most this ratio apart "
        "(> 1; 0: the paper's grid alone)",
    )
    stds: tuple[float, ...] = cli.setting(STDS, "init stds of the new factors tried at base rate 0.01 (> 0)")
    grids: tuple[str, ...] = cli.setting(GRIDS, "which grids: lr (base rates of both models), std (init stds)")
    seed: int = cli.setting(tutorial.SEED, "graph seed of every run (>= 0; the tutorial's 66478)")
    tag: str = cli.setting("", "suffix of the output files and claim rows, e.g. seed1: appendix_c-seed1.*")
    data_dir: str | None = cli.setting(None, "folder with mnist/*.gz, searched before $TFOVP_DATA_DIR")
    tensorboard: str | None = cli.setting(
        None, "write every run to TensorBoard under this folder (one run each, with its HParams and final metrics)"
    )
    self_test: bool = cli.setting(False, "the tutorial's fake data (a smoke test)")
    resume: bool = cli.setting(False, "reuse runs finished by an earlier (interrupted) run with the same settings")
    quick: bool = cli.setting(False, "smoke run in seconds: {preset} (flags given win)")

    QUICK = {"self_test": True, "steps": 4, "lrs": (0.01, 0.5), "stds": (0.1,), "rho": 8.0}

    def validate(self):
        cli.check(
            self.steps is None or 1 <= self.steps <= cli.MAX_STEPS,
            f"--steps {self.steps}: expected an integer from 1 to {cli.MAX_STEPS:,}",
        )
        cli.check(math.isfinite(self.epochs) and self.epochs > 0, f"--epochs {self.epochs:g}: expected a number > 0")
        cli.check_values("lrs", self.lrs, lambda r: math.isfinite(r) and r > 0, "finite numbers > 0")
        cli.check(
            self.rho == 0 or (math.isfinite(self.rho) and self.rho > 1),
            f"--rho {self.rho:g}: expected 0 or a number > 1",
        )
        cli.check_values("stds", self.stds, lambda s: math.isfinite(s) and s > 0, "finite numbers > 0")
        cli.check_values("grids", self.grids, lambda g: g in GRIDS, "lr, std")
        cli.check(len(self.grids) > 0, "--grids: expected lr, std or lr,std")
        cli.check(self.seed >= 0, f"--seed {self.seed}: expected an integer >= 0")
        cli.check_tag(self.tag)
        cli.check(
            self.data_dir is None or pathlib.Path(self.data_dir).is_dir(), f"--data-dir {self.data_dir}: no such folder"
        )
        self.check_cluster()


def _tutorial_config(config, factored, lr, std):
    """The tutorial's settings of one run: model, base rate and init std of the new factors."""
    label = f"{'overparameterized' if factored else 'original'}/lr={lr:g},std={std:g}"
    return tutorial.Config(
        tensorboard=None if config.tensorboard is None else str(pathlib.Path(config.tensorboard) / label),
        overparameterize=factored,
        base_lr=lr,
        overparam_init_std=std,
        epochs=config.epochs,
        steps=config.steps,
        data_dir=config.data_dir,
        self_test=config.self_test,
        seed=config.seed,
        quiet=True,
    )


def runs(config):
    """[(group, tutorial.Config)] of every run of the grids, in order."""
    plan = []
    if "lr" in config.grids:
        plan += [(g, _tutorial_config(config, g == MODELS[1], lr, 0.1)) for g in MODELS for lr in config.lrs]
    if "std" in config.grids:
        if not any(group == "original" and c.base_lr == criteria.STD_GRID_LR for group, c in plan):
            plan.append((BASELINE_GROUP, _tutorial_config(config, False, criteria.STD_GRID_LR, 0.1)))
        plan += [(STD_GROUP, _tutorial_config(config, True, criteria.STD_GRID_LR, std)) for std in config.stds]
    return plan


def refinement(tails, rho):
    """The rates to try next between the best rate of `tails` ({base rate: tail loss, inf
    where the run diverged}) and each neighbour more than `rho` apart from it: their
    geometric means. Empty once both neighbours are within `rho`, or every run diverged;
    a best rate at an end of the grid is not extended past it."""
    finite = {rate: tail for rate, tail in tails.items() if math.isfinite(tail)}
    if not finite or rho == 0:
        return []
    best = min(finite, key=finite.get)
    rates = sorted(tails)
    at = rates.index(best)
    neighbours = [rates[i] for i in (at - 1, at + 1) if 0 <= i < len(rates)]
    return [math.sqrt(best * n) for n in neighbours if max(best / n, n / best) > rho * (1 + 1e-9)]


def name(config):
    """The stem of the output files and the claims' figure: appendix_c[-TAG]."""
    return f"{criteria.APPENDIX_C}-{config.tag}" if config.tag else criteria.APPENDIX_C


def _baseline(rows):
    """The original model's run at the init-std grid's base rate, or None."""
    return next(
        (r for r in rows if r["group"] in ("original", BASELINE_GROUP) and r["base_lr"] == criteria.STD_GRID_LR),
        None,
    )


def _column(history, key):
    """A column of a run's history (or of a CompactRun's series) as floats, NaN where not
    recorded (or for a column that runs stored before it existed lack)."""
    return np.array([np.nan if v is None else v for v in history.get(key, [None] * len(history["step"]))], float)


@dataclasses.dataclass
class CompactRun:
    """A finished run as `<stem>_runs.json` commits it, so that `--resume` rebuilds it on
    a machine without the full records: its table row (exact, from every step) and, every
    RECORD_EVERY steps and at the last, the moving averages (window SMOOTHING_WINDOW) the
    plot draws of the printed loss and the cross-entropy, the validation error and fc1's
    norm."""

    row: dict
    series: dict  # "step" and the SMOOTHED / RAW keys, each a list (None: not recorded)

    SMOOTHED = ("minibatch_loss", "cross_entropy")
    RAW = ("validation_error", "fc1_frobenius")

    @classmethod
    def of(cls, row, result):
        steps = np.asarray(result.history["step"])
        keep = (steps % RECORD_EVERY == 0) | (steps == steps[-1])
        series = {"step": steps[keep].tolist()}
        for key in cls.SMOOTHED + cls.RAW:
            values = _column(result.history, key)
            if key in cls.SMOOTHED:
                values = criteria.smooth(values, criteria.SMOOTHING_WINDOW)
            series[key] = [None if not np.isfinite(v) else float(v) for v in values[keep]]
        return cls({k: v for k, v in row.items() if k != "index"}, series)

    def to_json(self):
        return {"row": _finite_or_text(self.row), "series": self.series}

    @classmethod
    def from_json(cls, data):
        row = {k: float(v) if v in ("inf", "nan") else v for k, v in data["row"].items()}
        return cls(row, data["series"])


def _finite_or_text(row):
    """The row with infinities and NaN as text (JSON has neither)."""
    return {k: str(v) if isinstance(v, float) and not math.isfinite(v) else v for k, v in row.items()}


def committed_runs(out, stem):
    """{run key: CompactRun} of OUT/<stem>_runs.json (empty if there is none)."""
    path = pathlib.Path(out) / f"{stem}{RUNS_SUFFIX}"
    if not path.is_file():
        return {}
    return {key: CompactRun.from_json(data) for key, data in json.loads(path.read_text()).items()}


def commit_run(out, stem, key, record):
    """Add or replace one run's CompactRun in OUT/<stem>_runs.json (under its lock), as
    soon as the run finishes: a long grid lands run by run."""
    path = pathlib.Path(out) / f"{stem}{RUNS_SUFFIX}"
    with locked(path):
        data = json.loads(path.read_text()) if path.is_file() else {}
        data[key] = record.to_json()
        outputs.write_json(path, data)


def _curve(label, result, loss="minibatch_loss", lower="validation_error"):
    """Per-step `loss` and every-100-steps `lower` of a run (a TrainingResult), or the
    moving averages a CompactRun holds."""
    if isinstance(result, CompactRun):
        series = result.series
        return MinibatchCurve(
            label, np.asarray(series["step"]), _column(series, loss), _column(series, lower), smoothed=True
        )
    history = result.history
    return MinibatchCurve(label, np.asarray(history["step"]), _column(history, loss), _column(history, lower))


def _best(rows, group, grid_only=False):
    """The row of `group` with the lowest tail loss among runs that did not diverge (of the
    paper's grid alone with `grid_only`), or None."""
    finished = [
        r for r in rows if r["group"] == group and r["diverged_at"] is None and (r["rates"] == GRID or not grid_only)
    ]
    return min(finished, key=lambda r: r["last_tenth_loss"]) if finished else None


def _panels(config, rows, results, best, reference):
    """Figure columns: each model's best rate (rate grid); the init-std runs' printed loss
    and validation error, then their cross-entropy and fc1 norm (std grid)."""
    panels = []
    if best:
        panels.append(
            MinibatchPanel(
                "best base learning rate of each model",
                criteria.SMOOTHING_WINDOW,
                [_curve(f"{g} (lr {b['base_lr']:g})", results[b["index"]]) for g, b in best.items() if b is not None],
            )
        )
    if "std" not in config.grids:
        return panels
    diverged = [r for r in rows if r["group"] == STD_GROUP and r["diverged_at"] is not None]
    title = "overparameterized, init std of the new factors" + "".join(
        f"\n(std {r['init_std']:g} diverged at step {r['diverged_at']}, not plotted)" for r in diverged
    )
    shown = [(f"std {r['init_std']:g}", r) for r in rows if r["group"] == STD_GROUP and r["diverged_at"] is None]
    if reference is not None:
        shown.append((f"original (lr {criteria.STD_GRID_LR:g})", reference))
    curves = [_curve(label, results[r["index"]]) for label, r in shown]
    parts = [_curve(label, results[r["index"]], "cross_entropy", "fc1_frobenius") for label, r in shown]
    return [
        *panels,
        MinibatchPanel(title, criteria.SMOOTHING_WINDOW, curves),
        MinibatchPanel(
            "the same runs: cross-entropy alone; fc1 (product) kernel norm",
            criteria.SMOOTHING_WINDOW,
            parts,
            loss_name="cross-entropy",
            loss_axis="minibatch cross-entropy (without the L2 term)",
            lower_name="||fc1 kernel||_F",
            lower_axis="Frobenius norm of the fc1 kernel",
        ),
    ]


def _claims(config, rows, best, best_on_grid, baseline, setting, originals=()):
    """The rate grid's claim (judged at the refined rates, the paper's grid beside) and the
    init-std grid's, on the printed loss and the cross-entropy; `originals`: the original
    model's finished rate-grid rows at the same budget and seed (`original_runs`), whose
    lowest value of each quantity is the original's best."""
    claims = []

    def pair(chosen):
        return [None if b is None else (b["base_lr"], b["last_tenth_loss"]) for b in chosen.values()]

    if best:
        refined = {"on_grid": pair(best_on_grid), "rho": config.rho} if config.rho else {}
        claims += criteria.appendix_c(*pair(best), setting=setting, figure=name(config), **refined)
    if "std" in config.grids:
        for quantity in criteria.APPENDIX_C_QUANTITIES:
            by_std = {r["init_std"]: r[quantity] for r in rows if r["group"] == STD_GROUP}
            lowest = min(originals, key=lambda r: r[quantity], default=None)
            best_pair = None if lowest is None else (lowest["base_lr"], lowest[quantity])
            claims += criteria.appendix_c_stds(
                None if baseline is None else baseline[quantity], by_std, quantity, setting, name(config), best_pair
            )
    return claims


def stored_config(data):
    """The Config of an Appendix C output's JSON (`data`); a run written before the
    refinement existed ran none (rho 0), whatever the default is now."""
    from reproduce.study.stored import load_config

    config = load_config(Config, data)
    return config if "rho" in data["config"] else dataclasses.replace(config, rho=0.0)


def read_rows(path):
    """The table rows of an Appendix C output (<stem>.csv, written with every digit) as the
    run built them: numbers as floats, an empty `diverged_at` as None."""
    import pandas as pd

    frame = pd.read_csv(path, keep_default_na=False)
    rows = frame.to_dict("records")
    for row in rows:
        row.setdefault("rates", GRID)  # a table from before the refinement: every rate on the grid
        row["diverged_at"] = None if row["diverged_at"] == "" else int(float(row["diverged_at"]))
    return rows


def original_runs(out, config, rows):
    """The original model's rate-grid runs (refinement included) that did not diverge, at
    this run's budget and seed: its own, else those of another Appendix C output in `out`
    with the rate grid and the same steps, epochs and seed (appendix_c-10ep-lr for
    appendix_c-10ep-std), else none."""

    def finished(table):
        return [r for r in table if r["group"] == "original" and r["diverged_at"] is None]

    if "lr" in config.grids:
        return finished(rows)
    for path in sorted(pathlib.Path(out).glob(f"{criteria.APPENDIX_C}*.json")):
        if path.stem.endswith("_runs") or not path.with_suffix(".csv").is_file():
            continue
        other = json.loads(path.read_text()).get("config", {})
        if "lr" in other.get("grids", ()) and all(
            other.get(k) == getattr(config, k) for k in ("steps", "epochs", "seed", "self_test")
        ):
            return finished(read_rows(path.with_suffix(".csv")))
    return []


def claims_of(config, out, rows):
    """Every claim row of a run from its table `rows` (what `reproduce.rejudge` calls with
    a committed run's CSV)."""
    setting = f"MNIST tutorial, {rows[0]['steps']:,} steps per run" + (
        "" if config.seed == tutorial.SEED else f", seed {config.seed}"
    )
    best = {g: _best(rows, g) for g in MODELS} if "lr" in config.grids else {}
    best_on_grid = {g: _best(rows, g, grid_only=True) for g in MODELS} if "lr" in config.grids else {}
    return _claims(config, rows, best, best_on_grid, _baseline(rows), setting, original_runs(out, config, rows))


def run(config, workdir, job=None):
    with job_scope(job, name(config)) as job:
        return _run(config, pathlib.Path(workdir), job)


def _row(group, run_config, result, rates=GRID):
    """One run's row of the table: its settings, tail means of the printed loss and of its
    two parts, the fc1 (product) kernel's final norm, test error and time."""
    diverged = result.diverged_at is not None
    parts = {
        f"last_tenth_{key}": criteria.tail_loss(result.history[key], diverged)
        if key in result.history
        else float("nan")
        for key in ("cross_entropy", "l2_term")
    }
    norms = [v for v in result.history.get("fc1_frobenius", []) if v is not None]
    return {
        "group": group,
        "overparameterized": run_config.overparameterize,
        "base_lr": run_config.base_lr,
        "rates": rates,  # the paper's grid, or the refinement round that added the rate
        "init_std": run_config.overparam_init_std,
        "steps": result.steps,
        "diverged_at": result.diverged_at,
        "last_tenth_loss": criteria.tail_loss(result.history["minibatch_loss"], diverged),
        **parts,  # the printed loss's parts: is a smaller init std faster on the fit or on the penalty?
        "fc1_frobenius_end": norms[-1] if norms else float("nan"),  # the dense kernel (product) at the end
        "test_error": result.test_error,
        "seconds": round(result.seconds, 1),
    }


def _run(config, out, job):
    started = time.time()
    claims_file = ClaimsFile(out)
    claims_file.read()
    plan = runs(config)
    mnist_panel.expect(job, name(config), [c for _, c in plan])
    store, rows, results = mnist_panel.store(out), [], []
    runner = _Runner(config, out, job, store, committed_runs(out, name(config)) if config.resume else {})
    if config.cluster_target() is not None:  # one Ray task per run, then the table below
        run_units(runner.units([c for _, c in plan]), config.cluster_target(), job)
    for group, run_config in plan:
        rows.append(runner.row(group, run_config, GRID, results))
    for round_ in range(1, 64) if "lr" in config.grids else ():  # the gaps halve (in log) every round
        extra = [
            (group, _tutorial_config(config, group == MODELS[1], rate, 0.1))
            for group in MODELS
            for rate in refinement(
                {r["base_lr"]: r["last_tenth_loss"] for r in rows if r["group"] == group}, config.rho
            )
        ]
        if not extra:
            break
        rates = ", ".join(f"{g} lr {c.base_lr:.3g}" for g, c in extra)
        job.write(f"refinement round {round_} (to a ratio {config.rho:g}): {rates}")
        job.expect(len(extra), sum(tutorial.planned_steps(c) * MNIST_STEP for _, c in extra))
        if config.cluster_target() is not None:
            run_units(runner.units([c for _, c in extra]), config.cluster_target(), job)
        rows += [runner.row(g, c, f"refinement {round_}", results) for g, c in extra]
    import pandas as pd

    frame = pd.DataFrame(rows).drop(columns="index")
    stem = name(config)
    outputs.write_csv(out / f"{stem}.csv", frame, float_format=None)
    setting = f"MNIST tutorial, {rows[0]['steps']:,} steps per run" + (
        "" if config.seed == tutorial.SEED else f", seed {config.seed}"
    )
    best = {g: _best(rows, g) for g in MODELS} if "lr" in config.grids else {}
    best_on_grid = {g: _best(rows, g, grid_only=True) for g in MODELS} if "lr" in config.grids else {}
    baseline = _baseline(rows)
    plot_panels(_panels(config, rows, results, best, baseline), str(out / stem), title=f"Appendix C: {setting}")
    claims = claims_of(config, out, rows)
    claims_file.replace(stem, claims, job.command)
    training = float(frame["seconds"].sum())  # also when runs were resumed
    summary = RunSummary.now(stem, job.command, config, started, training).to_json(
        best=_public(best),  # at the refined rates (the paper's grid alone without --rho)
        best_on_grid=_public(best_on_grid),
        overparameterized_faster_at_best_rates=claims[0].verdict == verdict(True) if best else None,
        claims=[dataclasses.asdict(c) for c in claims],
    )
    outputs.write_json(out / f"{stem}.json", summary)
    return summary


def _label(run_config):
    return "overparameterized" if run_config.overparameterize else "original"


@dataclasses.dataclass
class _Runner:
    """Where the runs of one invocation come from: the store of full records (`--resume`),
    the committed CompactRuns (`committed`, with `--resume`), or training."""

    config: Config
    out: pathlib.Path
    job: object
    store: object  # RecordStore of TrainingResult
    committed: dict  # {run key: CompactRun}

    def units(self, run_configs):
        """The cluster units of the runs that neither the store nor `committed` holds."""
        labelled = [(_label(c), c) for c in run_configs if mnist_panel.run_key(c, _label(c)) not in self.committed]
        return mnist_panel.units(labelled, self.store, self.config.resume, self.job)

    def row(self, group, run_config, rates, results):
        """Train (or reuse) one run, print its line and return its table row; its result
        (or, for a run known only from `committed`, its CompactRun) is appended to
        `results` (the row's `index`). A run trained or read from the store is committed
        to `<stem>_runs.json` at once."""
        label, stem, job = _label(run_config), name(self.config), self.job
        key = mnist_panel.run_key(run_config, label)
        if key in self.committed and not self.store.path(key).is_file():  # finished on another machine
            record = self.committed[key]
            work = tutorial.planned_steps(run_config) * MNIST_STEP
            job.reuse(f"{mnist_panel.describe(run_config, label)}: rebuilt from {stem}{RUNS_SUFFIX}", work)
            results.append(record)
            return {**record.row, "group": group, "rates": rates, "index": len(results) - 1}
        result = mnist_panel.train_stored(run_config, self.store, self.config.resume, label, job)
        row = {**_row(group, run_config, result, rates), "index": len(results)}
        commit_run(self.out, stem, key, CompactRun.of(row, result))
        outcome = (
            f"last-10% loss {row['last_tenth_loss']:.4f}, test error {result.test_error:.2f}%"
            if result.diverged_at is None
            else f"diverged at step {result.diverged_at} (excluded)"
        )
        job.write(
            f"    {group}, lr {run_config.base_lr:g}, std {run_config.overparam_init_std:g}: {outcome}, "
            f"{result.seconds:.0f} s"
        )
        results.append(result)
        return row


def _public(best):
    """{group: its best row without the internal index, or None}."""
    return {g: None if b is None else {k: v for k, v in b.items() if k != "index"} for g, b in best.items()}


def main(argv=None):
    return cli.main(run, Config, __doc__, argv, prog="python -m reproduce.appendix_c")


if __name__ == "__main__":
    main()
