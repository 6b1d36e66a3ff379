"""Appendix C: the MNIST tutorial's speed-up under other settings (PAPER Sec. 5).

1. Base learning rate in the paper's grid for the original and the overparameterized
   model; the fastest of each (lowest mean minibatch loss over the last 10 % of the
   budget, diverged runs excluded) are compared (`tfovp.study.criteria.appendix_c`).
2. The overparameterized model with the init std of the new factors in
   {1e-3, 5e-3, 1e-2, 5e-2, 1e-1, 5e-1} at the tutorial's learning rate (paper: almost
   identical curves, all far faster than the baseline), judged on the printed loss and
   on its cross-entropy alone against the original model at the same rate
   (`tfovp.study.criteria.appendix_c_stds`).

Each row also holds the last-10 % means of the printed loss's two parts, the cross-entropy
and the L2 term, and the Frobenius norm of fc1's (product) kernel at the end: whether a
smaller init std is faster on the fit or only on the penalty.

Full runs (10 epochs each, 26 runs) take hours on a CPU; `--steps` shortens every run.

    python -m reproduce.appendix_c [--steps 500] [--lrs ...] [--stds ...] [--grids lr,std] [--seed N]
        [--tag NAME] [--out results] [--resume] [--cluster ray [--address HOST:6379]]

`--seed` changes the tutorial's graph seed (66478) for every run; `--grids std` runs only
the init-std grid and its baseline; `--tag seed1` writes appendix_c-seed1.* with its own
claim rows.
"""

import dataclasses
import math
import pathlib
import time

import numpy as np

from mnist_tutorial import convolutional as tutorial
from reproduce import cli, mnist_panel
from tfovp.study import criteria, outputs
from tfovp.study.claims import ClaimsFile, verdict
from tfovp.study.cluster import run_units
from tfovp.study.plotting import MinibatchCurve, MinibatchPanel, plot_panels
from tfovp.study.progress import job_scope
from tfovp.study.provenance import machine, versions
from tfovp.study.runs import PAPER_GRID

STDS = (1e-3, 5e-3, 1e-2, 5e-2, 1e-1, 5e-1)
STD_GROUP = "overparameterized, init std"
BASELINE_GROUP = "original, baseline of the init-std grid"  # when the rate grid does not hold it
GRIDS = ("lr", "std")


@dataclasses.dataclass
class Config(cli.ClusterConfig):
    steps: int | None = cli.setting(None, "steps of 64 images per run (>= 1; default: --epochs)")
    epochs: float = cli.setting(10.0, "epochs per run when --steps is not given (> 0; the tutorial's 10)")
    lrs: tuple[float, ...] = cli.setting(PAPER_GRID, "base learning rates tried for both models (> 0)")
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

    QUICK = {"self_test": True, "steps": 4, "lrs": (0.01, 0.5), "stds": (0.1,)}

    def validate(self):
        cli.check(
            self.steps is None or 1 <= self.steps <= cli.MAX_STEPS,
            f"--steps {self.steps}: expected an integer from 1 to {cli.MAX_STEPS:,}",
        )
        cli.check(math.isfinite(self.epochs) and self.epochs > 0, f"--epochs {self.epochs:g}: expected a number > 0")
        cli.check_values("lrs", self.lrs, lambda r: math.isfinite(r) and r > 0, "finite numbers > 0")
        cli.check_values("stds", self.stds, lambda s: math.isfinite(s) and s > 0, "finite numbers > 0")
        cli.check_values("grids", self.grids, lambda g: g in GRIDS, "lr, std")
        cli.check(len(self.grids) > 0, "--grids: expected lr, std or lr,std")
        cli.check(self.seed >= 0, f"--seed {self.seed}: expected an integer >= 0")
        cli.check_tag(self.tag)
        cli.check(
            self.data_dir is None or pathlib.Path(self.data_dir).is_dir(), f"--data-dir {self.data_dir}: no such folder"
        )
        self.check_cluster()


def runs(config):
    """[(group, tutorial.Config)] of every run, in order."""

    def make(factored, lr, std):
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

    plan = []
    if "lr" in config.grids:
        plan += [("original", make(False, lr, 0.1)) for lr in config.lrs]
        plan += [("overparameterized", make(True, lr, 0.1)) for lr in config.lrs]
    if "std" in config.grids:
        if not any(group == "original" and c.base_lr == criteria.STD_GRID_LR for group, c in plan):
            plan.append((BASELINE_GROUP, make(False, criteria.STD_GRID_LR, 0.1)))
        plan += [(STD_GROUP, make(True, criteria.STD_GRID_LR, std)) for std in config.stds]
    return plan


def name(config):
    """The stem of the output files and the claims' figure: appendix_c[-TAG]."""
    return f"{criteria.APPENDIX_C}-{config.tag}" if config.tag else criteria.APPENDIX_C


def _baseline(rows):
    """The original model's run at the init-std grid's base rate, or None."""
    return next(
        (r for r in rows if r["group"] in ("original", BASELINE_GROUP) and r["base_lr"] == criteria.STD_GRID_LR),
        None,
    )


def _curve(label, result, loss="minibatch_loss", lower="validation_error"):
    """Per-step `loss` and every-100-steps `lower` of a run; NaN where a value was not
    recorded (also a column that runs stored before it existed lack)."""
    history = result.history

    def column(key):
        return np.array([np.nan if v is None else v for v in history.get(key, [None] * len(history["step"]))], float)

    return MinibatchCurve(label, np.asarray(history["step"]), column(loss), column(lower))


def _best(rows, group):
    """The row of `group` with the lowest tail loss among runs that did not diverge, or None."""
    finished = [r for r in rows if r["group"] == group and r["diverged_at"] is None]
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


def _claims(config, rows, best, baseline, setting):
    """The rate grid's claim and the init-std grid's, on the printed loss and the cross-entropy."""
    claims = []
    if best:
        claims += criteria.appendix_c(
            *[None if b is None else (b["base_lr"], b["last_tenth_loss"]) for b in best.values()],
            setting=setting,
            figure=name(config),
        )
    if "std" in config.grids:
        for quantity in criteria.APPENDIX_C_QUANTITIES:
            by_std = {r["init_std"]: r[quantity] for r in rows if r["group"] == STD_GROUP}
            claims += criteria.appendix_c_stds(
                None if baseline is None else baseline[quantity], by_std, quantity, setting, name(config)
            )
    return claims


def run(config, workdir, job=None):
    with job_scope(job, name(config)) as job:
        return _run(config, pathlib.Path(workdir), job)


def _row(group, run_config, result):
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
    labelled = [("overparameterized" if c.overparameterize else "original", c) for _, c in plan]
    if config.cluster_target() is not None:  # one Ray task per run, then the table below
        run_units(mnist_panel.units(labelled, store, config.resume, job), config.cluster_target(), job)
    for index, ((group, run_config), (label, _)) in enumerate(zip(plan, labelled)):
        result = mnist_panel.train_stored(run_config, store, config.resume, label, job)
        rows.append({**_row(group, run_config, result), "index": index})
        job.write(
            f"    {group}, lr {run_config.base_lr:g}, std {run_config.overparam_init_std:g}: last-10% "
            f"loss {rows[-1]['last_tenth_loss']:.4f}, test error {result.test_error:.2f}%, {result.seconds:.0f} s"
        )
        results.append(result)
    import pandas as pd

    frame = pd.DataFrame(rows).drop(columns="index")
    stem = name(config)
    outputs.write_csv(out / f"{stem}.csv", frame, float_format=None)
    setting = f"MNIST tutorial, {rows[0]['steps']:,} steps per run" + (
        "" if config.seed == tutorial.SEED else f", seed {config.seed}"
    )
    best = {g: _best(rows, g) for g in ("original", "overparameterized")} if "lr" in config.grids else {}
    baseline = _baseline(rows)
    plot_panels(_panels(config, rows, results, best, baseline), str(out / stem), title=f"Appendix C: {setting}")
    claims = _claims(config, rows, best, baseline, setting)
    claims_file.replace(stem, claims, job.command)
    summary = {
        "figure": stem,
        "command": job.command,
        "config": dataclasses.asdict(config),
        "elapsed_seconds": round(time.time() - started, 1),
        "versions": versions(),
        "machine": machine(),
        "training_seconds": round(float(frame["seconds"].sum()), 1),  # also when runs were resumed
        "best": {g: None if b is None else {k: v for k, v in b.items() if k != "index"} for g, b in best.items()},
        "overparameterized_faster_at_best_rates": claims[0].verdict == verdict(True) if best else None,
        "claims": [dataclasses.asdict(c) for c in claims],
    }
    outputs.write_json(out / f"{stem}.json", summary)
    return summary


def main(argv=None):
    return cli.main(run, Config, __doc__, argv, prog="python -m reproduce.appendix_c")


if __name__ == "__main__":
    main()
