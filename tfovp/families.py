"""Curve families: one model family (`CurveSpec`) trained by `tfovp.sweep.sweep` over a
grid of learning rates and seeds (`train_family`), tuned by `tfovp.tuning`
(`tune_family`), as a typed record (`CurveFamily`) with everything needed to store it,
resume it, summarize it, plot it and judge it.

Tuning: a family on a grid is trained on the grid, then at the rates the protocol adds
(grid ends extended x5, the best rate's bracket refined to a ratio rho, at every tracked
level); the grid's copies stay the family, the added ones are kept beside them
(`CurveFamily.tuned`). Threshold verdicts read the grid; speed-ups are reported on both.

Summaries are computed from the record on demand (`CurveFamily.summary`), at any
convergence level and, with `truncated`, at any shorter budget, without retraining;
exactly at the budgets the family was trained to keep (`train_family(budgets=...)`).
"""

import dataclasses
import functools
import hashlib
import json

import numpy as np

from tfovp import convergence, speedup, tuning

FORMAT = 4  # version of the JSON layout written by `CurveFamily.to_json`; stores are kept per format


@dataclasses.dataclass(frozen=True)
class CurveSpec:
    """One curve: a model family and how it is trained (PAPER Sec. 5).

    update: "gd" (Eq. 4 on the factors), "end_to_end" (Eq. 10 on a linear model) or a
    Keras optimizer name ("adagrad", "adadelta", "adam", "sgd").
    initializer: "near_zero", "identity", "balanced" (a random W_e(0), rebalanced) or
    "balanced-linear" (the linear model's near-zero W(0), factored exactly balanced).
    learning_rates: None means the configured grid (best rate selected).
    """

    def make_initializer(self):
        """The initializer of the spec (seeded per copy by the sweep): a tfovp alias with
        the spec's std, or a Keras initializer by name (e.g. "orthogonal")."""
        from tfovp import initializers

        std = 0.01 if self.init_std is None else self.init_std
        if self.initializer == "balanced-linear":
            return initializers.Balanced(stddev=std, seed=None, from_linear=True)
        if self.initializer in initializers.ALIASES:
            return initializers.ALIASES[self.initializer](stddev=std, seed=None)
        return initializers.get(self.initializer)

    label: str
    depth: int = 1
    hidden_widths: int = 1
    update: str = "gd"
    initializer: str = "near_zero"
    loss: float = 2.0
    learning_rates: tuple | None = None
    record_end_to_end: bool = False
    init_std: float | None = None  # stddev of the initializer's draws; None: its default (0.01)
    bias: bool = False  # a bias on every layer (not the paper's: the 2024 student reproduction's)
    bias_std: float = 0.0  # the biases' initial N(0, bias_std^2) draw (0: zeros)

    def key(self):
        """A file-name-safe key: the label's slug and a hash of every field (a field at its
        default is left out, so that adding fields keeps the keys of earlier specs)."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        defaults = {"init_std": None, "bias": False, "bias_std": 0.0}  # left out at these values: the keys stay
        text = json.dumps({k: v for k, v in fields.items() if k not in defaults or v != defaults[k]}, sort_keys=True)
        slug = "".join(c if c.isalnum() else "-" for c in self.label).strip("-").lower()
        return f"{slug}-{hashlib.sha1(text.encode()).hexdigest()[:8]}"

    @classmethod
    def from_json(cls, data):
        data = dict(data)
        if data.get("learning_rates") is not None:
            data["learning_rates"] = tuple(float(r) for r in data["learning_rates"])
        return cls(**data)


@dataclasses.dataclass(frozen=True)
class SelectedCurve:
    """The best learning rate of one seed and its loss curve (NaN after divergence)."""

    learning_rate: float
    steps: np.ndarray
    losses: np.ndarray


def _floats(array):
    """A nested list of floats with None for NaN (valid JSON)."""
    array = np.asarray(array, dtype=np.float64)
    return np.where(np.isfinite(array), array, None).tolist()


def _array(data, dtype=np.float64):
    return None if data is None else np.array(data, dtype=dtype)


def _stages(data):
    if data is None:
        return None
    from tfovp.tuning import Stage

    return tuple(Stage.from_json(s) for s in data)


@dataclasses.dataclass
class CurveFamily:
    """A curve family trained by one sweep: copy c (column c of the (R, C) arrays) has
    `learning_rates[c]` and `seeds[c]`.

    Attributes:
        spec: what was trained.
        optimum: L* of the problem (float64), for relative excess losses.
        steps: (R,) recorded steps (step t = loss before the (t+1)-th update).
        learning_rates, seeds: (C,) per copy, seed-major.
        losses: (R, C) full-batch loss, NaN from a copy's divergence on.
        diverged_at: (C,) step of divergence, -1 if none.
        end_to_end_norm: (R, C) ||W_e||_F.
        end_to_end: (R, C, d, k) recorded W_e (Keras orientation) or None.
        balancedness: (R, C) largest Eq. 7 residual over factor pairs, or None.
        relative_balancedness: (R, C) largest Eq. 7 residual over factor pairs, each
            divided by its scale (about ||W_j||_F^2, `tfovp.sweep.SweepResult`), or None
            (also for families stored before it was recorded).
        elapsed_seconds: training time including XLA compilation.
        seconds_per_step: steady-state time of one step of all copies.
        tuned: the same family at the learning rates that tuning added to the grid
            (`tfovp.tuning`: grid ends extended, brackets refined), one record, or None
            (not tuned, or nothing to add); `with_tuned` merges it in.
        tuning_stages: the `tfovp.tuning.Stage`s that trained this family and `tuned`
            (the first is the grid), or None if not tuned.
        rho: the ratio of each refinement round of the tuning, or None.
        reference_loss: L_ref = L^1(W = 0) of the problem, shared by every family it is
            compared with (`tfovp.speedup`), or None.
        levels: (J,) relative excess levels e whose loss thresholds L* + e (L_ref - L*)
            were tracked at every step, or None.
        last_above: (C, J) last step whose loss exceeded each level's threshold (-1:
            never), or None.
        window_max: (R, C) largest loss from each recorded step to the next, over every
            step (+inf from divergence on), or None.
        final_kernels: (C, d, k) W_e after training ([W_e; b_e], (C, d + 1, k), with
            biases; NaN after divergence), or None: what held-out data are scored with.
        budgets: (K,) shorter budgets, recorded steps, after which `last_above` was kept.
        last_above_at: (K, C, J) `last_above` as it stood after each budget, or None:
            with it `truncated(budget)` is exactly the record of a run of that budget.
        tuned_within: the budgets within which the tuning searched again
            (`tune_family(budgets=...)`): cut at each, the family is tuned to `rho` as a
            run of that budget would be; () where it was tuned for its whole run only.
    """

    spec: CurveSpec
    optimum: float
    steps: np.ndarray
    learning_rates: np.ndarray
    seeds: np.ndarray
    losses: np.ndarray
    diverged_at: np.ndarray
    end_to_end_norm: np.ndarray
    end_to_end: np.ndarray | None = None
    balancedness: np.ndarray | None = None
    relative_balancedness: np.ndarray | None = None
    elapsed_seconds: float = 0.0
    seconds_per_step: float = float("nan")
    tuned: "CurveFamily | None" = None
    tuning_stages: tuple | None = None
    rho: tuple | None = None
    reference_loss: float | None = None
    levels: np.ndarray | None = None
    last_above: np.ndarray | None = None
    window_max: np.ndarray | None = None
    final_kernels: np.ndarray | None = None
    budgets: tuple = ()
    last_above_at: np.ndarray | None = None
    tuned_within: tuple = ()

    # ------------------------------------------------------------------ views

    @property
    def seed_list(self):
        """The seeds in the order of the copies."""
        return list(dict.fromkeys(int(s) for s in self.seeds))

    @property
    def diverged(self):
        return self.diverged_at >= 0

    @property
    def training_seconds(self):
        """Seconds spent training this family and the rates its tuning added."""
        return self.elapsed_seconds + (self.tuned.training_seconds if self.tuned else 0.0)

    @property
    def is_tuned(self):
        return self.tuning_stages is not None

    def with_tuned(self):
        """This family with the rates its tuning added as further copies (itself if none)."""
        return self if self.tuned is None else concatenated(self, self.tuned)

    def tuning(self):
        """The `tfovp.tuning.Tuning` of this family (every rate trained, the tuned rate at
        every level), or None if it was not tuned."""
        if not self.is_tuned:
            return None
        grid = tuple(float(r) for r in self.learning_rates[self.columns()])
        return tuning.Tuning(
            self.levels, grid, tuple(self.rho), speedup.rate_results(self.with_tuned()), tuple(self.tuning_stages)
        )

    def columns(self, seed=None):
        """Indices of the copies of `seed` (default: the first seed)."""
        seed = self.seed_list[0] if seed is None else int(seed)
        found = np.flatnonzero(self.seeds == seed)
        if found.size == 0:
            raise KeyError(f"curve family {self.spec.label!r} has no seed {seed}; seeds: {self.seed_list}")
        return found

    def of_seed(self, seed):
        """The family of one seed's copies (its tuning included)."""
        tuned = None if self.tuned is None else self.tuned.of_seed(seed)
        return dataclasses.replace(self, **self._copies(self.columns(seed)), tuned=tuned)

    def _copies(self, columns):
        """{field: its values at copies `columns`} of every per-copy field."""
        return {name: _take(getattr(self, name), columns, axis) for name, axis in _COPY_AXES.items()}

    def at_rate(self, learning_rate):
        """The copies (every seed) at one learning rate, the tuning's included, as an
        untuned family: the one run of the one-rate protocol (KeyError if not trained)."""
        merged = self.with_tuned()
        columns = np.flatnonzero(np.isclose(merged.learning_rates, learning_rate, rtol=1e-12, atol=0.0))
        if columns.size == 0:
            raise KeyError(f"curve family {self.spec.label!r} has no learning rate {learning_rate:g}")
        return dataclasses.replace(merged, **merged._copies(columns), tuned=None, tuning_stages=None, rho=None)

    def summary(self, level, seed=None):
        """`convergence.SeedSummary` of one seed's learning rates at `level`."""
        columns = self.columns(seed)
        return convergence.summarize_rates(
            self.steps,
            self.losses[:, columns],
            self.optimum,
            self.learning_rates[columns],
            self.diverged[columns],
            level,
        )

    def selected(self, level, seed=None):
        """`SelectedCurve` of the best rate of one seed at `level`, None if all diverged."""
        summary = self.summary(level, seed)
        if summary.best_index is None:
            return None
        column = self.columns(seed)[summary.best_index]
        return SelectedCurve(summary.best_learning_rate, self.steps, self.losses[:, column])

    def column_of(self, learning_rate, seed=None):
        """Index of the copy with `learning_rate` (and `seed`)."""
        columns = self.columns(seed)
        hits = columns[np.isclose(self.learning_rates[columns], learning_rate, rtol=1e-12, atol=0.0)]
        if hits.size == 0:
            raise KeyError(f"curve family {self.spec.label!r} has no learning rate {learning_rate:g}")
        return int(hits[0])

    def truncated(self, budget):
        """The family as a run of `budget` iterations would have recorded it (the steps
        up to `budget`, divergence only if it happened by then; the same trajectory).
        What was tracked at every step (`last_above`, `window_max`) is kept exactly where
        `budget` is one of `budgets` (its last window then ends at the budget), else
        dropped: it cannot be cut at an arbitrary step."""
        if budget >= self.steps[-1]:
            return self
        keep = self.steps <= budget
        diverged_at = np.where((self.diverged_at >= 0) & (self.diverged_at <= budget), self.diverged_at, -1)

        def cut(recorded):
            return None if recorded is None else recorded[keep]

        last_above, window_max = None, None
        if budget in self.budgets and self.last_above_at is not None:
            last_above = self.last_above_at[self.budgets.index(budget)]
            if self.window_max is not None:  # the window from the budget on is the budget's step alone
                window_max = self.window_max[keep].copy()
                window_max[-1] = np.where(np.isnan(self.losses[keep][-1]), np.inf, self.losses[keep][-1])
        return dataclasses.replace(
            self,
            steps=self.steps[keep],
            losses=self.losses[keep],
            diverged_at=diverged_at,
            end_to_end_norm=self.end_to_end_norm[keep],
            end_to_end=cut(self.end_to_end),
            balancedness=cut(self.balancedness),
            relative_balancedness=cut(self.relative_balancedness),
            tuned=None if self.tuned is None else self.tuned.truncated(budget),
            last_above=last_above,
            window_max=window_max,
            final_kernels=None,
            budgets=tuple(b for b in self.budgets if b < budget),
            last_above_at=_earlier_snapshots(self, budget),
            tuned_within=tuple(b for b in self.tuned_within if b < budget),
        )

    # ------------------------------------------------------------------ JSON

    def to_json(self):
        """A JSON-ready dict (NaN as null)."""
        return {
            "format": FORMAT,
            "spec": dataclasses.asdict(self.spec),
            "key": self.spec.key(),
            "optimum": float(self.optimum),
            "steps": self.steps.tolist(),
            "learning_rates": self.learning_rates.tolist(),
            "seeds": [int(s) for s in self.seeds],
            "losses": _floats(self.losses),
            "diverged_at": [int(d) for d in self.diverged_at],
            "end_to_end_norm": _floats(self.end_to_end_norm),
            "end_to_end": None if self.end_to_end is None else _floats(self.end_to_end),
            "balancedness": None if self.balancedness is None else _floats(self.balancedness),
            "relative_balancedness": _floats(self.relative_balancedness)
            if self.relative_balancedness is not None
            else None,
            "elapsed_seconds": float(self.elapsed_seconds),
            "seconds_per_step": None if not np.isfinite(self.seconds_per_step) else float(self.seconds_per_step),
            "tuned": None if self.tuned is None else self.tuned.to_json(),
            "tuning_stages": None if self.tuning_stages is None else [s.to_json() for s in self.tuning_stages],
            "rho": None if self.rho is None else list(self.rho),
            "reference_loss": self.reference_loss,
            "levels": None if self.levels is None else self.levels.tolist(),
            "last_above": None if self.last_above is None else self.last_above.tolist(),
            "window_max": None if self.window_max is None else _floats(self.window_max),
            "final_kernels": None if self.final_kernels is None else _floats(self.final_kernels),
            **({"budgets": list(self.budgets), "last_above_at": self.last_above_at.tolist()} if self.budgets else {}),
            **({"tuned_within": list(self.tuned_within)} if self.tuned_within else {}),
        }

    @classmethod
    def from_json(cls, data):
        """The inverse of `to_json`; raises ValueError for another layout or bad shapes."""
        if data.get("format") != FORMAT:
            raise ValueError(f"stored curve family has format {data.get('format')!r}, expected {FORMAT}")
        family = cls(
            spec=CurveSpec.from_json(data["spec"]),
            optimum=float(data["optimum"]),
            steps=np.array(data["steps"], dtype=np.int64),
            learning_rates=np.array(data["learning_rates"], dtype=np.float64),
            seeds=np.array(data["seeds"], dtype=np.int64),
            losses=_array(data["losses"]),
            diverged_at=np.array(data["diverged_at"], dtype=np.int64),
            end_to_end_norm=_array(data["end_to_end_norm"]),
            end_to_end=_array(data["end_to_end"]),
            balancedness=_array(data["balancedness"]),
            relative_balancedness=_array(data.get("relative_balancedness")),
            elapsed_seconds=float(data["elapsed_seconds"]),
            seconds_per_step=float("nan") if data["seconds_per_step"] is None else float(data["seconds_per_step"]),
            tuned=None if data["tuned"] is None else cls.from_json(data["tuned"]),
            tuning_stages=_stages(data["tuning_stages"]),
            rho=None if data["rho"] is None else tuple(float(r) for r in data["rho"]),
            reference_loss=data.get("reference_loss"),
            levels=_array(data.get("levels")),
            last_above=_array(data.get("last_above"), np.int64),
            window_max=_array(data.get("window_max")),
            final_kernels=_array(data.get("final_kernels")),
            budgets=tuple(int(b) for b in data.get("budgets", ())),
            last_above_at=_array(data.get("last_above_at"), np.int64),
            tuned_within=tuple(int(b) for b in data.get("tuned_within", ())),
        )
        rows, copies = family.steps.size, family.learning_rates.size
        if family.losses.shape != (rows, copies) or family.seeds.shape != (copies,):
            raise ValueError(
                f"stored curve family has losses of shape {family.losses.shape}, expected ({rows}, {copies})"
            )
        return family


# Per-copy arrays of a CurveFamily and the axis that runs over copies.
_COPY_AXES = {
    "learning_rates": 0,
    "seeds": 0,
    "losses": 1,
    "diverged_at": 0,
    "end_to_end_norm": 1,
    "end_to_end": 1,
    "balancedness": 1,
    "relative_balancedness": 1,
    "last_above": 0,
    "window_max": 1,
    "final_kernels": 0,
    "last_above_at": 1,
}


def _earlier_snapshots(family, budget):
    """`last_above_at` of the budgets before `budget` (None if none)."""
    earlier = [k for k, b in enumerate(family.budgets) if b < budget]
    return family.last_above_at[earlier] if earlier and family.last_above_at is not None else None


def _take(array, columns, axis):
    return None if array is None else np.take(array, columns, axis=axis)


def concatenated(first, second):
    """One family holding the copies of `first` then `second` (the same spec trained on
    other learning rates, for the same steps and seeds); `first`'s spec and tuning."""
    if (
        not np.array_equal(first.steps, second.steps)
        or first.seed_list != second.seed_list
        or first.budgets != second.budgets
    ):
        raise ValueError(
            f"curve families {first.spec.label!r} cannot be joined: other recorded steps or seeds "
            f"({first.seed_list} vs {second.seed_list})"
        )
    joined = {}
    for name, axis in _COPY_AXES.items():
        a, b = getattr(first, name), getattr(second, name)
        joined[name] = None if a is None or b is None else np.concatenate([a, b], axis=axis)
    return dataclasses.replace(
        first,
        **joined,
        elapsed_seconds=first.elapsed_seconds + second.elapsed_seconds,
        tuned=None,
    )


def record_steps(steps, points=160):
    """Recorded steps: every step up to 100, then log-spaced, plus 100 linear points."""
    dense = np.arange(min(steps, 100) + 1)
    logs = np.geomspace(1, max(steps, 1), points).astype(int)
    linear = np.linspace(0, steps, 101).astype(int)
    return np.unique(np.concatenate([dense, logs, linear, [steps]]))


def train_family(
    spec, problem, *, steps, grid, seeds, dtype="float32", progress=None, levels=speedup.LEVELS, budgets=()
):
    """Sweep `spec` on `problem` (a `tfovp.problem.Problem`) over its learning rates
    (the spec's, else `grid`) x `seeds` for `steps` iterations; returns a CurveFamily.
    For the speed-up measures, the loss thresholds of `levels` and the largest loss
    between recorded steps are tracked at every step; `budgets` (< `steps`) are also
    recorded steps, after which the tracking is kept, so that the one run is, cut at
    each, exactly what a run of that budget records (`CurveFamily.truncated`)."""
    from tfovp.sweep import sweep  # TensorFlow is imported only when something trains

    rates = list(spec.learning_rates or grid)
    budgets = tuple(sorted({int(b) for b in budgets if b < steps}))
    recorded = np.union1d(record_steps(steps), np.asarray(budgets, dtype=np.int64))
    levels = np.asarray(levels, dtype=np.float64)
    result = sweep(
        problem.x,
        problem.y,
        rates,
        steps,
        depth=spec.depth,
        hidden_widths=spec.hidden_widths,
        update=spec.update,
        initializer=spec.make_initializer(),
        seeds=seeds,
        loss=spec.loss,
        reduction=problem.reduction,
        record_steps=recorded,
        record_end_to_end=spec.record_end_to_end,
        record_balancedness=spec.depth > 1 and spec.update != "end_to_end",
        record_window_max=True,
        thresholds=problem.thresholds(spec.loss, levels, spec.bias),
        snapshot_steps=budgets,
        bias=spec.bias,
        bias_std=spec.bias_std,
        dtype=dtype,
        progress=progress,
    )
    return CurveFamily(
        spec=spec,
        optimum=problem.optimum(spec.loss, spec.bias),
        steps=recorded,
        learning_rates=result.learning_rates,
        seeds=result.seeds,
        losses=result.losses,
        diverged_at=result.diverged_at,
        end_to_end_norm=result.end_to_end_norm,
        end_to_end=None if result.end_to_end is None else result.end_to_end.astype(np.float64),
        balancedness=None if result.balancedness is None else result.balancedness.max(axis=-1).astype(np.float64),
        relative_balancedness=(
            None if result.balancedness is None else result.relative_balancedness().max(axis=-1).astype(np.float64)
        ),
        elapsed_seconds=result.elapsed,
        seconds_per_step=result.seconds_per_step,
        reference_loss=problem.reference_loss(spec.loss),
        levels=levels,
        last_above=result.last_above,
        window_max=result.window_max,
        final_kernels=np.where(result.diverged[:, None, None], np.nan, result.final_end_to_end()),
        budgets=budgets,
        last_above_at=result.last_above_at,
    )


def tune_family(train, grid, levels, rho, budgets=(), earlier=None):
    """The family trained by `train(rates, stage)` (a CurveFamily per call) on `grid`, tuned by
    `tfovp.tuning.tune` at every level and the final loss: the grid's family, with the
    rates tuning added in `tuned` and the stages that trained them.

    `budgets`: the search runs again within each shorter budget the families keep, on
    every rate trained so far cut there (`CurveFamily.truncated`), and the rates it adds
    (stages named "... within B") train for the whole run too: cut at each budget, the
    family is then tuned to `rho` as a run of that budget would be, where otherwise only
    the rates that suit the whole run are near its best. `earlier`: this family as
    tuned before (e.g. stored without some budgets' search); its rates are reused and
    only the searches within the budgets it lacks run."""
    families = [] if earlier is None else [dataclasses.replace(earlier, tuned=None)]
    families += [earlier.tuned] if earlier is not None and earlier.tuned is not None else []
    stages = list(earlier.tuning_stages or ()) if earlier is not None else []
    searches = [None, *sorted(budgets)] if earlier is None else sorted(set(budgets) - set(earlier.tuned_within))
    rho_used = earlier.rho if earlier is not None else None
    for budget in searches:

        def measured(rates, stage, budget=budget):
            families.append(train(rates, stage if budget is None else f"{stage} within {budget:,}"))
            return speedup.rate_results(families[-1] if budget is None else families[-1].truncated(budget))

        so_far = functools.reduce(concatenated, families) if families else None
        if so_far is not None and budget is not None:
            so_far = so_far.truncated(budget)
        result = tuning.tune(
            measured, levels, grid, rho=rho, trained=None if so_far is None else speedup.rate_results(so_far)
        )
        rho_used = result.rho
        stages += [
            dataclasses.replace(s, name=s.name if budget is None else f"{s.name} within {budget:,}")
            for s in result.stages
        ]
    extra = functools.reduce(concatenated, families[1:]) if len(families) > 1 else None
    if extra is not None:
        extra.spec = dataclasses.replace(families[0].spec, learning_rates=tuple(extra.learning_rates[extra.columns()]))
    family = families[0]
    family.tuned, family.tuning_stages, family.rho = extra, tuple(stages), rho_used
    family.tuned_within = tuple(sorted(set(budgets) | set(earlier.tuned_within if earlier is not None else ())))
    return family


def at_rates(spec, rates, grid):
    """`spec` at `rates`: the spec itself for its grid (so that its key stays the same)."""
    same = spec.learning_rates is None and tuple(rates) == tuple(sorted(grid))
    return spec if same else dataclasses.replace(spec, learning_rates=tuple(float(r) for r in rates))
