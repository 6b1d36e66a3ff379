"""What the linear figures share: their settings (`LinearConfig`, with the choices the
paper leaves open) and one figure's run (`FigureRun`): the problem, its curve families
(trained or reused) and the outputs (CSV, JSON, PNG/PDF, claims, TensorBoard).

results/README.md records the choices of the committed runs.
"""

import dataclasses
import json
import math
import pathlib
import time

from reproduce.cli import MAX_STEPS, check, check_tag, check_values, setting
from reproduce.study import criteria, outputs
from reproduce.study.claims import ClaimsFile
from reproduce.study.plotting import Curve, LossPanel
from reproduce.study.progress import Job, job_scope, sweep_work
from reproduce.study.provenance import RunSummary, settings_key
from reproduce.study.runs import PAPER_GRID, FamilyRunner
from reproduce.study.store import RecordStore
from tfovp import families, speedup
from tfovp.datasets import PRESETS, REGRESSION_LOADERS
from tfovp.families import CurveFamily
from tfovp.problem import Problem
from tfovp.tuning import RHO

INITS = ("near_zero", "orthogonal", "glorot_uniform", "glorot_normal", "he_normal", "lecun_normal", "truncated_normal")
# Fields that change no stored curve (the tuning is part of each stored family's key).
BOOKKEEPING = ("resume", "tensorboard", "quick", "data_dir", "tag", "x_scale", "rho", "no_tune")
ADDED_SETTINGS = ("hidden_widths", "init", "init_std", "bias")  # in the stores' key only when changed


@dataclasses.dataclass
class StudyConfig:
    """Settings of every study on the regression data (PAPER Sec. 5); those the paper
    leaves open have documented defaults."""

    dataset: str = setting("ethanol", "regression data (the paper's is ethanol)", tuple(REGRESSION_LOADERS))
    loss_reduction: str = setting("mean", "l_p loss averaged or summed over examples", ("mean", "sum"))
    lrs: tuple[float, ...] = setting(PAPER_GRID, "learning-rate grid (comma-separated, > 0); best rate per curve")
    dtype: str = setting("float32", "training precision (optima are float64)", ("float32", "float64"))
    level: float = setting(0.2, "relative excess loss (L - L*)/(L0 - L*) that counts as converged, in (0, 1)")
    data_dir: str | None = setting(None, "folder with the datasets, searched before $TFOVP_DATA_DIR")
    rho: float = setting(
        RHO, "tune every grid curve's learning rate to within this ratio for the speed-ups (> 1; tfovp.tuning)"
    )
    no_tune: bool = setting(
        False, "take the learning-rate grid as given: no grid-end extension and no refinement (speed-ups on the grid)"
    )
    resume: bool = setting(False, "reuse curves finished by an earlier (interrupted) run with the same settings")
    quick: bool = setting(False, "smoke run in seconds: {preset} (flags given win)")

    QUICK = {"steps": 300, "lrs": (1e-3, 1e-2, 1e-1), "rho": 2.0}

    def validate(self):
        """Raise ValueError naming the flag for a value no study can use."""
        check(
            self.dataset in REGRESSION_LOADERS,
            f"--dataset {self.dataset}: expected one of {', '.join(REGRESSION_LOADERS)}",
        )
        check(self.loss_reduction in ("mean", "sum"), f"--loss-reduction {self.loss_reduction}: expected mean or sum")
        check_values("lrs", self.lrs, lambda r: math.isfinite(r) and r > 0, "finite numbers > 0")
        check(self.dtype in ("float32", "float64"), f"--dtype {self.dtype}: expected float32 or float64")
        check(0 < self.level < 1, f"--level {self.level:g}: expected a number in (0, 1)")
        check(math.isfinite(self.rho) and self.rho > 1, f"--rho {self.rho:g}: expected a ratio > 1")
        check(
            self.data_dir is None or pathlib.Path(self.data_dir).is_dir(), f"--data-dir {self.data_dir}: no such folder"
        )

    @property
    def tuning_ratio(self):
        """The refinement ratio of the tuning, or None without tuning."""
        return None if self.no_tune else self.rho

    @staticmethod
    def check_steps(name, steps):
        check(
            isinstance(steps, int) and 1 <= steps <= MAX_STEPS,
            f"--{name} {steps}: expected an integer from 1 to {MAX_STEPS:,}",
        )


@dataclasses.dataclass
class LinearConfig(StudyConfig):
    """Settings shared by the linear figures."""

    preprocessing: str = setting("standardize", "feature/target scaling; not stated in the paper", tuple(PRESETS))
    steps: int = setting(20_000, "full-batch GD iterations per curve; not stated in the paper for Figs. 2-4")
    seed: int = setting(0, "initialization seed (>= 0)")
    tensorboard: str | None = setting(
        None, "write TensorBoard runs (one per learning rate) with their HParams to this folder"
    )
    tag: str = setting("", "suffix of the output files, e.g. 1e6: figure3-1e6.* (letters, digits, . _ -)")
    x_scale: str = setting(
        "linear",
        "iteration axis of the plots: linear, or log (linear to 10, then log: the first steps)",
        ("linear", "log"),
    )
    # Settings the paper fixes, switchable (the 2024 student reproduction changed them):
    hidden_widths: int = setting(1, "hidden width of every deep net (>= 1; the paper's: 1)")
    init: str = setting(
        "near_zero",
        "initialization of the near-zero curves: near_zero (N(0, --init-std^2), the paper's), orthogonal (semi-"
        "orthogonal factors, the student's 'near identity') or a Keras initializer (identity-init curves stay)",
        INITS,
    )
    init_std: float = setting(
        0.01, "std of the near-zero (and identity) initialization's draws (> 0; the paper's 0.01)"
    )
    bias: bool = setting(False, "a bias on every layer, as torch.nn.Linear has (not the paper's; GD and optimizers)")

    def adjusted(self, spec):
        """`spec` with the switchable settings applied (a spec of the figure's own
        width, or initializer other than near-zero, keeps it)."""
        import dataclasses as dc

        changes = {"bias": self.bias}
        if spec.hidden_widths == 1:
            changes["hidden_widths"] = self.hidden_widths
        if spec.initializer == "near_zero":
            changes["initializer"] = self.init
        if spec.init_std is None and self.init_std != 0.01:
            changes["init_std"] = self.init_std
        return dc.replace(spec, **changes)

    def validate(self):
        super().validate()
        check(self.hidden_widths >= 1, f"--hidden-widths {self.hidden_widths}: expected an integer >= 1")
        check(
            math.isfinite(self.init_std) and self.init_std > 0, f"--init-std {self.init_std:g}: expected a number > 0"
        )
        check(self.init in INITS, f"--init {self.init}: expected one of {', '.join(INITS)}")
        check(
            self.preprocessing in PRESETS, f"--preprocessing {self.preprocessing}: expected one of {', '.join(PRESETS)}"
        )
        self.check_steps("steps", self.steps)
        check(self.x_scale in ("linear", "log"), f"--x-scale {self.x_scale}: expected linear or log")
        check(isinstance(self.seed, int) and self.seed >= 0, f"--seed {self.seed}: expected an integer >= 0")
        check_tag(self.tag)

    def check_losses(self):
        check_values("losses", self.losses, lambda p: math.isfinite(p) and p >= 1, "numbers >= 1 (p of l_p)")

    def setting_text(self):
        """The settings of a run, for claim rows."""
        switched = [
            text
            for text, on in (
                ("a bias on every layer", self.bias),
                (f"hidden width {self.hidden_widths}", self.hidden_widths != 1),
                (f"init {self.init}", self.init != "near_zero"),
                (f"init std {self.init_std:g}", self.init_std != 0.01),
            )
            if on
        ]
        return (
            f"{self.dataset}, {self.preprocessing}, {self.loss_reduction}, {self.steps:,} it, "
            f"level {self.level:g}, seed {self.seed}" + "".join(f", {t}" for t in switched)
        )

    def curve_settings(self):
        """The fields every linear figure shares that change a curve (so figures share curves)."""
        return LinearConfig(**{f.name: getattr(self, f.name) for f in dataclasses.fields(LinearConfig)})


class Measures:
    """What a linear figure's claims are judged from: each curve family's
    `convergence.SeedSummary` (and so its `criteria.Speed`) at the configured level, and
    the speed-up `criteria.Comparison` of each pair by name ("<contender> vs <baseline>
    (lp)"). `FigureRun` measures the families it trains; `reproduce.study.stored.StoredFigure`
    reads the same measures back from a run's committed JSON and CSVs, so that a figure's
    `claims_of(config, measures)` judges a fresh run and a committed one alike."""

    def __init__(self, config):
        self.config = config
        self.comparisons = {}
        self.grid_verdicts = []  # the speed-up claims judged on the paper's grid, beside the tuned rows

    def summary(self, label, p):
        """The `convergence.SeedSummary` of the family (label, p) at the configured level."""
        raise NotImplementedError

    def speed(self, label, p):
        return criteria.Speed.of(self.summary(label, p))

    def speedup_claims(self, figure, claim, comparisons, **kwargs):
        """The speed-up claim row (judged on the tuned speed-ups) and its verdict on the
        paper's grid, for the figure's JSON (`criteria.speedup_claim`)."""
        setting = self.config.setting_text()
        row = criteria.speedup_claim(figure, claim, comparisons, setting=setting, **kwargs)
        grid = criteria.speedup_claim(figure, claim, [c.on_grid() for c in comparisons], setting=setting, **kwargs)
        self.grid_verdicts.append(
            {"claim": claim, "tuned": row.verdict, "grid": grid.verdict, "measured_grid": grid.measured}
        )
        return row


def figure_name(figure, config):
    """The output stem of `figure` run with `config`: other datasets never overwrite the
    paper's figures, and a tag names a variant (figure3-abalone, figure4-1e6)."""
    if config.dataset != "ethanol":
        figure = f"{figure}-{config.dataset}"
    return f"{figure}-{config.tag}" if config.tag else figure


class FigureRun(Measures):
    """One figure's run: the problem, its curve families (trained, or reused: see
    `reproduce.study.runs.FamilyRunner`) and its outputs. The shared claims file is read
    first, so that a corrupt one stops the run before any training."""

    def __init__(self, figure, config, workdir, job=None):
        super().__init__(config)
        self.figure, self.out = figure_name(figure, config), pathlib.Path(workdir)
        self.job = job or Job(figure)
        self.started = time.time()
        self.claims_file = ClaimsFile(self.out)
        self.claims_file.read()
        self.problem = Problem.load(config.dataset, config.preprocessing, config.loss_reduction, config.data_dir)
        folder = f"{settings_key(config.curve_settings(), BOOKKEEPING, ADDED_SETTINGS)}-f{families.FORMAT}"
        store = RecordStore(self.out / ".curves" / folder, CurveFamily.from_json)
        self.runner = FamilyRunner(
            self.problem,
            store,
            steps=config.steps,
            grid=config.lrs,
            seed=config.seed,
            level=config.level,
            dtype=config.dtype,
            rho=config.tuning_ratio,
            resume=config.resume,
            job=self.job,
        )
        self.families = {}

    def expect(self, specs):
        """Plan the families of `specs` (for the announcements and the progress bar)."""
        plan(self.job, self.figure, self.config, specs)

    def family(self, spec, seeds=None):
        family = self.runner.family(self.config.adjusted(spec), seeds)
        self.families[(spec.label, spec.loss)] = family
        return family

    def summary(self, label, p):
        """The SeedSummary (first seed, the configured level) of a trained family."""
        return self.families[(label, p)].summary(self.config.level)

    def comparison(self, contender, baseline, p):
        """criteria.Comparison of two trained families of the l_p panel: speed-ups at
        every tracked level (`tfovp.speedup`) with both families tuned, and on
        the grid alone."""
        fc, fb = self.families[(contender, p)], self.families[(baseline, p)]
        return criteria.compare(contender, fc, baseline, fb, self.config.steps)

    def write_speedups(self, pairs):
        """<figure>_speedup.csv/.png/.pdf of every (contender, baseline, p) pair; returns
        ({name: Comparison}, the JSON summary) for the claims and the figure's JSON."""
        from reproduce.study.plotting import plot_speedups

        comparisons = {f"{c} vs {b} (l{p:g})": self.comparison(c, b, p) for c, b, p in pairs}
        crossovers = {}
        for (contender, baseline, p), name in zip(pairs, comparisons):
            fc, fb = self.families[(contender, p)].with_tuned(), self.families[(baseline, p)].with_tuned()
            crossovers[name] = speedup.crossover(fb.steps, speedup.envelope(fb), speedup.envelope(fc))
        self.comparisons.update(comparisons)
        rows, summary = outputs.speedup_table(comparisons, crossovers)
        import pandas as pd

        stem = self.out / f"{self.figure}_speedup"
        outputs.write_csv(f"{stem}.csv", pd.DataFrame(rows))
        plot_speedups(
            comparisons,
            str(stem),
            f"{self.figure}: speed-up of each contender over its baseline, {self.config.steps:,} iterations",
        )
        return comparisons, summary

    def panel(self, title, labels_and_losses, notes=(), styles=None):
        """A LossPanel of the best-rate curves named by (label, p) pairs; `styles` maps a
        label to (line style, colour) where curves are to be read against each other."""
        curves, notes = [], list(notes)
        p = labels_and_losses[0][1]
        for label, loss in labels_and_losses:
            summary, selected = self.summary(label, loss), self.families[(label, loss)].selected(self.config.level)
            if selected is None:
                notes.append(f"{label}: every rate diverged")
                continue
            edge = f", best rate at {summary.at_edge} edge" if summary.at_edge else ""
            style, color = (styles or {}).get(label, ("-", None))
            text = f"{label} (lr {selected.learning_rate:g}{edge})"
            curves.append(Curve(text, selected.steps, selected.losses, style=style, color=color))
        return LossPanel(title, self.problem.optimum(p), curves, notes)

    def write(self, panels, claims, extra=None, panels_run=None):
        """<figure>.csv and _runs.csv (the curves), .json/.png/.pdf, the figure's claim
        rows (only those of `panels_run` if given) and TensorBoard; returns the JSON
        summary. The curves' tables are left as they are when this run trained none."""
        from reproduce.study.plotting import plot_panels

        c = self.config
        claims = [dataclasses.replace(claim, figure=self.figure) for claim in claims]
        stem = self.out / self.figure
        tables = outputs.curve_tables(
            self.figure,
            self.families,
            c.level,
            {
                "dataset": c.dataset,
                "preprocessing": c.preprocessing,
                "loss_reduction": c.loss_reduction,
                "budget": c.steps,
                "dtype": c.dtype,
            },
        )
        if tables is not None:
            outputs.write_curve_tables(stem, tables)
        plot_panels(
            panels,
            str(stem),
            log_x=c.x_scale == "log",
            title=(
                f"{self.figure}: {c.dataset}, preprocessing={c.preprocessing}, loss "
                f"{c.loss_reduction} over examples, {c.steps:,} iterations, {c.dtype}"
            ),
        )
        self.claims_file.replace(self.figure, claims, self.job.command, panels_run)
        if c.tensorboard:
            self._write_tensorboard()
        summary = RunSummary.now(
            self.figure, self.job.command, c, self.started, sum(f.training_seconds for f in self.families.values())
        ).to_json(
            optimum={f"l{p:g}": v for p, v in self.problem.optima.items()},
            curves={f"{label} (l{p:g})": outputs.family_summary(f, c.level) for (label, p), f in self.families.items()},
            claims=[dataclasses.asdict(claim) for claim in claims],
            speedup_claims_on_grid=self.grid_verdicts,
            **(extra or {}),
        )
        if panels_run is not None:
            summary = kept_panels(f"{stem}.json", summary, panels_run)
        outputs.write_json(f"{stem}.json", summary)
        return summary

    def _write_tensorboard(self):
        """Every learning rate of every family as a TensorBoard run with its HParams
        (`reproduce.study.tensorboard`)."""
        from reproduce.study import tensorboard

        c = self.config
        settings = {"dataset": c.dataset, "preprocessing": c.preprocessing}
        tensorboard.log_families(c.tensorboard, self.figure, self.families.values(), c.level, settings)


# The entries of a figure's JSON that only its linear panel writes (Figure 5's left panel)
LINEAR_ENTRIES = ("optimum", "curves", "speedup", "speedup_claims_on_grid")


def kept_panels(path, summary, panels_run):
    """`summary` of a run of some panels only, with what an earlier run of the others
    wrote to `path` kept: its claims of the other panels and, where this run measured
    none, the linear panel's entries (a run of Figure 5's MNIST panel alone keeps the
    left panel's curves and speed-ups)."""
    path = pathlib.Path(path)
    if not path.is_file():
        return summary
    earlier = json.loads(path.read_text())
    for key in LINEAR_ENTRIES:
        if not summary.get(key) and earlier.get(key):
            summary[key] = earlier[key]
    others = [c for c in earlier.get("claims", []) if c.get("panel", "") not in ("", *panels_run)]
    summary["claims"] = summary["claims"] + others
    return summary


def plan(job, name, config, specs):
    """Plan figure `name`'s curve families `specs` in `job` (see `Job.plan`)."""
    tuned = config.tuning_ratio is not None
    work = sum(
        sweep_work(len(spec.learning_rates or config.lrs), config.steps, spec.loss, tuned and not spec.learning_rates)
        for spec in specs
    )
    job.plan(name, len(specs), work)


def run_figure(name, config, workdir, job, body):
    """Run `body(figure_run)` for figure `name` under `job` (a Job of its own if None);
    returns its summary."""
    with job_scope(job, name) as job:
        return body(FigureRun(name, config, workdir, job))
