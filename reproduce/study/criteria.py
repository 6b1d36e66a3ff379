"""Every claim criterion of the reproduction, with its thresholds as named values.

The thresholds were fixed before the runs that judge them (see results/README.md) and
are not command-line options: a verdict must not depend on a knob turned after seeing
the data. Each function takes typed measurements and returns `Claim` rows.

Rules shared by all criteria:
* "faster" compares iterations until the relative excess loss stays below the level
  (`tfovp.convergence`), best learning rate of each curve; a curve that reaches
  the level beats one that does not within the budget.
* When the data cannot decide, the verdict is INCONCLUSIVE: neither curve reaches the
  level, or every learning rate of a compared curve diverged (a curve that diverges at
  every rate of the grid says nothing about its speed). The one exception is the
  paper's own wording for Figure 5 (App. C): "near-zero depth 8 is stuck" counts
  divergence at every rate as being stuck.
"""

import dataclasses

import numpy as np

from reproduce.study.claims import Claim, fmt_iterations, verdict
from tfovp import speedup as speedup_module

# Figure 2: the end-to-end rule tracks GD on a depth-N net when, for every depth and
# width, max_t ||W_e(net) - W_e(rule)|| / ||W*|| and max_t |e_net(t) - e_rule(t)| (e the
# relative excess loss) are both at most this.
TRACKING_TOLERANCE = 0.05
# Figure 2: width has a negligible effect when iterations to the level across widths
# stay within this factor (final relative excess if no width reaches the level).
WIDTH_TOLERANCE = 1.1
# Figure 3, l2 "deeper is not faster": every deeper net needs at least this fraction of
# the linear model's iterations.
NOT_FASTER_FRACTION = 0.9
# Figure 3, l4 "deeper is much faster": every deeper net needs at most 1/this of the
# linear model's iterations.
MUCH_FASTER_FACTOR = 2.0
# Figure 5 (left): a curve "moves" once its relative excess stays below this level.
MOVED_LEVEL = 0.9
# Figure 5 (left): "moves only late" = first moves after this fraction of the budget.
LATE_FRACTION = 0.1
# Figure 5 (left): "moves at once" = moves within this fraction of the budget.
AT_ONCE_FRACTION = 0.01
# Figure 5 (right), MNIST: steps of the trailing moving average of the minibatch loss.
SMOOTHING_WINDOW = 100
# MNIST "converges considerably faster": the smoothed loss of the overparameterized
# model is lower at these fractions of training, and it reaches the original's final
# smoothed loss within REACH_FRACTION of the steps.
CHECKPOINT_FRACTIONS = (0.25, 0.5, 0.75, 1.0)
REACH_FRACTION = 0.75
# MNIST: "the tutorial's test error (about 0.8 %)" = below this, in percent.
TUTORIAL_TEST_ERROR_LIMIT = 1.5
# Appendix C: speed of an MNIST run = mean minibatch loss over this last fraction of it.
TAIL_FRACTION = 0.1
# Speed-up verdicts (`tfovp.speedup`), judged at the tightest level either family
# reaches: a contender is "faster" when S >= FASTER_FACTOR there (or its lower bound
# is), "an order of magnitude faster" at ORDER_OF_MAGNITUDE, and "not faster" (l2)
# when S <= NOT_FASTER_SPEEDUP = 1/NOT_FASTER_FRACTION, the threshold criterion's.
FASTER_FACTOR = 2.0
ORDER_OF_MAGNITUDE = 10.0
NOT_FASTER_SPEEDUP = 1 / NOT_FASTER_FRACTION


@dataclasses.dataclass(frozen=True)
class Speed:
    """What a depth claim needs of one curve's best learning rate (one seed, one level)."""

    iterations: int | None  # to the level; None: not reached within the budget
    final_excess: float | None  # relative excess at the end; None: every rate diverged

    @property
    def all_diverged(self):
        return self.final_excess is None and self.iterations is None

    @classmethod
    def of(cls, summary):
        """From a `convergence.SeedSummary`."""
        return cls(summary.iterations_to_level, summary.final_relative_excess)


def faster(a, b, factor=1.0):
    """Whether speed `a` beats `b` by `factor` (a.iterations * factor <= b.iterations).
    A curve that reaches the level beats one that does not; None (undecidable) if neither
    reaches it or either diverged at every learning rate."""
    if a.all_diverged or b.all_diverged:
        return None
    if a.iterations is not None and b.iterations is not None:
        return a.iterations * factor <= b.iterations
    if a.iterations is not None:
        return True
    if b.iterations is not None:
        return False
    return None


def _all(values):
    """Whether every value holds; None (undecidable) as soon as one is undecidable."""
    values = list(values)
    return None if any(v is None for v in values) else all(values)


def _setting_row(figure, claim, criterion, measured, holds, setting):
    return Claim(figure, claim, criterion, measured, verdict(holds), setting)


# ---------------------------------------------------------------------------- Figure 2


@dataclasses.dataclass(frozen=True)
class Tracking:
    """A depth-N net of one width against the end-to-end rule from the same W_e(0), same eta."""

    depth: int
    width: int
    distance: float  # max_t ||W_e(net) - W_e(rule)|| / ||W*||
    loss_gap: float  # max_t |e_net - e_rule|; inf if either diverged
    net_diverged: bool
    rule_diverged: bool

    def tracks(self):
        """True/False, or None if both diverged (nothing to compare)."""
        if self.net_diverged and self.rule_diverged:
            return None
        if self.net_diverged or self.rule_diverged:
            return False
        return max(self.distance, self.loss_gap) <= TRACKING_TOLERANCE


def figure2_tracking(p, pairs, setting=""):
    """l_p: the rule tracks depth-N GD, from `Tracking` records (one per depth and width)."""
    measured = "; ".join(
        f"N={t.depth} w={t.width}: W_e {t.distance:.3g}, loss {t.loss_gap:.3g}"
        for t in sorted(pairs, key=lambda t: (t.depth, t.width))
    )
    return _setting_row(
        "figure2",
        f"l{p:g}: the end-to-end rule tracks depth-N GD",
        f"for every depth and width (same eta, same W_e(0)), max over iterations of ‖W_e(net) - W_e(rule)‖ / "
        f"‖W*‖ and of the gap between their relative excess losses (L - L*)/(L0 - L*) both <= "
        f"{TRACKING_TOLERANCE:g} (inf: the rule diverged; INCONCLUSIVE where both diverged or no depth had a "
        "converging rate)",
        measured or "no depth had a converging learning rate",
        _all([t.tracks() for t in pairs]) if pairs else None,
        setting,
    )


def figure2_width(p, depth, speeds, setting=""):
    """l_p, depth N: width has a negligible effect, from {width: Speed} at one shared rate."""
    widths = sorted(speeds)
    iterations = [speeds[w].iterations for w in widths]
    finals = [speeds[w].final_excess for w in widths]
    if all(speeds[w].all_diverged for w in widths):
        ratio, holds = float("nan"), None
    elif all(i is not None for i in iterations):
        ratio = max(iterations) / max(min(iterations), 1)
        holds = ratio <= WIDTH_TOLERANCE
    elif all(i is None for i in iterations) and all(f is not None for f in finals):
        ratio = max(finals) / max(min(finals), 1e-300)
        holds = ratio <= WIDTH_TOLERANCE
    else:  # some widths reach the level (or converge) and others do not: width matters
        ratio, holds = float("nan"), False
    measured = ", ".join(f"width {w}: {fmt_iterations(i)}" for w, i in zip(widths, iterations))
    return _setting_row(
        "figure2",
        f"l{p:g}, depth {depth}: width has a negligible effect",
        f"iterations to the level across widths {', '.join(str(w) for w in widths)} within a factor "
        f"{WIDTH_TOLERANCE:g} (final excess if none converges)",
        f"{measured} (ratio {ratio:.3g})",
        holds,
        setting,
    )


def figure2_depth(deep, shallow, setting=""):
    """l4: deeper converges faster, from the Speed of the depth-3 and depth-2 nets."""
    return _setting_row(
        "figure2",
        "l4: deeper converges faster",
        "iterations to the level, best rate each: depth-3 net < depth-2 net",
        f"depth 3: {fmt_iterations(deep.iterations)}, depth 2: {fmt_iterations(shallow.iterations)}",
        faster(deep, shallow),
        setting,
    )


# ---------------------------------------------------------------------------- Figure 3


def figure3(speeds, setting="", figure="figure3"):
    """Claims of Figure 3 from {(depth, p): Speed} (p = 2 and/or 4; depth 1 needed)."""
    rows = []
    for p, claim, criterion, judge in (
        (
            2.0,
            "l2: deeper is not faster (slightly slower)",
            f"iterations to the level (best rate each): every depth > 1 needs >= {NOT_FASTER_FRACTION:g}x those of "
            "depth 1",
            lambda deep, linear: faster(linear, deep, factor=NOT_FASTER_FRACTION),
        ),
        (
            4.0,
            "l4: deeper is much faster",
            f"iterations to the level (best rate each): every depth > 1 needs <= 1/{MUCH_FASTER_FACTOR:g} of those of "
            "depth 1",
            lambda deep, linear: faster(deep, linear, factor=MUCH_FASTER_FACTOR),
        ),
    ):
        if (1, p) not in speeds:
            continue
        deeper = sorted(n for (n, q) in speeds if q == p and n > 1)
        measured = ", ".join(f"depth {n}: {fmt_iterations(speeds[(n, p)].iterations)}" for n in [1, *deeper])
        holds = _all([judge(speeds[(n, p)], speeds[(1, p)]) for n in deeper])
        rows.append(_setting_row(figure, claim, criterion, measured, holds, setting))
    return rows


# ---------------------------------------------------------------------------- Figure 4


def figure4(p, speeds, setting=""):
    """Claims of Figure 4 from {curve label: Speed} with the labels of `reproduce.figure4`."""
    gd = speeds["depth-3 net, GD"]
    left = ("depth-3 net, GD", "linear model, AdaGrad", "linear model, AdaDelta")
    right = ("linear model, Adam", "depth-2 net, Adam", "depth-3 net, Adam")
    return [
        _setting_row(
            "figure4",
            f"l{p:g}: depth-3 GD beats AdaGrad and AdaDelta on the linear model",
            "iterations to the level, best rate each: depth-3 GD < AdaGrad and < AdaDelta",
            ", ".join(f"{k}: {fmt_iterations(speeds[k].iterations)}" for k in left),
            _all([faster(gd, speeds[k]) for k in left[1:]]),
            setting,
        ),
        _setting_row(
            "figure4",
            f"l{p:g}: depth accelerates Adam",
            "iterations to the level, best rate each: Adam on depth 2 and on depth 3 < Adam on depth 1",
            ", ".join(f"{k}: {fmt_iterations(speeds[k].iterations)}" for k in right),
            _all([faster(speeds[k], speeds[right[0]]) for k in right[1:]]),
            setting,
        ),
    ]


# ---------------------------------------------------------------------------- Figure 5 (left)


def figure5(p, summaries, budget, setting=""):
    """Claims of Figure 5 (left) from {curve label: SeedSummary} (labels of
    `reproduce.figure5`) of a run of `budget` iterations."""

    def moved(label):
        return summaries[label].best_iterations_to(MOVED_LEVEL)

    def speed(label):
        return Speed.of(summaries[label])

    stuck_rates = summaries["depth-8 net, near-zero init"].rates
    finals = [r.final_relative_excess for r in stuck_rates if not r.diverged]
    stuck = all(f is None or f > MOVED_LEVEL for f in finals)  # every rate diverged counts as stuck (App. C)
    late_curve = summaries["depth-4 net, near-zero init"]
    late = moved("depth-4 net, near-zero init")
    identity = ("depth-4 net, identity init", "depth-8 net, identity init")
    at_once = [moved(label) for label in identity]
    if any(summaries[label].all_diverged for label in identity):
        moves_at_once = None
    else:
        moves_at_once = all(a is not None and a <= AT_ONCE_FRACTION * budget for a in at_once)
    return [
        _setting_row(
            "figure5",
            f"l{p:g}: near-zero init, depth 8 is stuck at the end of the budget (paper: 100K)",
            f"every rate diverges or ends ({budget:,} iterations) with relative excess > {MOVED_LEVEL:g} "
            "(divergence at every rate counts as stuck, as in the paper's App. C)",
            f"{sum(r.diverged for r in stuck_rates)} of {len(stuck_rates)} rates diverged; lowest final "
            f"relative excess of the others: {min(finals) if finals else 'none'}",
            stuck,
            setting,
        ),
        _setting_row(
            "figure5",
            f"l{p:g}: near-zero init, depth 4 moves only late (paper: ~65K)",
            f"best rate needs >= {LATE_FRACTION:g} x budget = {int(LATE_FRACTION * budget):,} "
            f"iterations to stay below relative excess {MOVED_LEVEL:g} (INCONCLUSIVE if every rate diverged)",
            "every rate diverged" if late_curve.all_diverged else f"best rate: {fmt_iterations(late)}",
            None if late_curve.all_diverged else (late is None or late >= LATE_FRACTION * budget),
            setting,
        ),
        _setting_row(
            "figure5",
            f"l{p:g}: identity init, depths 4 and 8 move at once",
            f"both stay below relative excess {MOVED_LEVEL:g} within {AT_ONCE_FRACTION:g} x budget = "
            f"{int(AT_ONCE_FRACTION * budget):,} iterations (INCONCLUSIVE if every rate of one diverged)",
            f"depth 4: {fmt_iterations(at_once[0])}, depth 8: {fmt_iterations(at_once[1])}",
            moves_at_once,
            setting,
        ),
        _setting_row(
            "figure5",
            f"l{p:g}: identity init, deeper is faster",
            "iterations to the level, best rate each: depth 8 <= depth 4",
            f"depth 8: {fmt_iterations(speed(identity[1]).iterations)}, "
            f"depth 4: {fmt_iterations(speed(identity[0]).iterations)}",
            faster(speed(identity[1]), speed(identity[0])),
            setting,
        ),
    ]


# ---------------------------------------------------------------------------- MNIST


def smooth(values, window):
    """Trailing moving average over `window` steps (shorter at the start)."""
    values = np.asarray(values, dtype=float)
    sums = np.cumsum(np.insert(values, 0, 0.0))
    counts = np.minimum(np.arange(1, len(values) + 1), window)
    return (sums[1:] - sums[np.maximum(np.arange(1, len(values) + 1) - window, 0)]) / counts


@dataclasses.dataclass(frozen=True)
class MnistOutcome:
    """What the MNIST claims need of one trained model (one seed)."""

    minibatch_loss: np.ndarray  # per step, as the tutorial prints it (cross-entropy + L2 term)
    test_error: float  # percent; NaN if the run diverged
    diverged: bool
    cross_entropy: np.ndarray | None = None  # per step, the data term alone
    validation_error: np.ndarray | None = None  # percent, at every evaluation (every 100 steps)


def faster_series(original, contender, window, unit="step"):
    """The rule of "converges considerably faster" on two series of equal length: the
    contender's trailing `window` mean is lower at 1/4, 1/2, 3/4 and the end, and reaches
    the original's final smoothed value within REACH_FRACTION of the series. Returns
    (holds, measured text with the positions, in `unit`s, counted from 1)."""
    smoothed = {"original": smooth(original, window), "contender": smooth(contender, window)}
    length = len(smoothed["original"])
    checkpoints = [max(int(length * q) - 1, 0) for q in CHECKPOINT_FRACTIONS]
    lower = [smoothed["contender"][i] < smoothed["original"][i] for i in checkpoints]
    reached = np.flatnonzero(smoothed["contender"] <= smoothed["original"][-1])
    first = int(reached[0]) if reached.size else None
    measured = ", ".join(
        f"{unit} {i + 1}: {smoothed['original'][i]:.3f} vs {smoothed['contender'][i]:.3f}" for i in checkpoints
    )
    text = (
        f"original vs overparameterized at {measured}; original's final level reached at {unit} "
        f"{fmt_iterations(None if first is None else first + 1)} of {length:,}"
    )
    return all(lower) and first is not None and first <= REACH_FRACTION * length, text


def _seed_mean(outcomes, field):
    """The mean over seeds of one per-step series, or None if a series is missing."""
    series = [getattr(o, field) for o in outcomes]
    if any(s is None for s in series) or len({len(s) for s in series}) != 1:
        return None
    return np.mean(np.stack([np.asarray(s, dtype=float) for s in series]), axis=0)


def _range(values):
    return (
        f"{min(values):.2f}"
        if len(values) == 1
        else f"{np.mean(values):.2f} (min {min(values):.2f}, max {max(values):.2f})"
    )


_MNIST_SPEED = "MNIST: the overparameterized tutorial converges considerably faster"
_MNIST_CRITERION = (
    f"smoothed ({SMOOTHING_WINDOW}-step trailing mean) minibatch loss, mean over seeds, lower at 1/4, "
    "1/2, 3/4 and the end of training, and the original's final smoothed loss reached within 3/4 of "
    "the steps (INCONCLUSIVE if a model diverged)"
)
_TEST_CLAIM = "MNIST: both models reach the tutorial's test error (about 0.8 %)"
_TEST_CRITERION = (
    f"test error < {TUTORIAL_TEST_ERROR_LIMIT:g} % for both models and every seed (INCONCLUSIVE if a model diverged)"
)
# MNIST, the parts of the loss (issue of the loss decomposition): the same rule on the
# cross-entropy alone, and on the validation error with a window of VALIDATION_WINDOW
# evaluations; "lower test error" needs the seeds' ranges to be apart.
VALIDATION_WINDOW = 5
# MNIST: the preconditioned original "tracks" the factored model when its smoothed printed
# loss is within this factor of the factored model's at every 100th step from step 100 on.
MNIST_TRACKING_FACTOR = 2.0


def mnist(originals, overparameterized, setting=""):
    """Claims of Figure 5 (right) from lists of `MnistOutcome` (one per seed) of the two
    models: the paper's claim on the printed loss, the tutorial's test error, and the same
    speed rule on the cross-entropy alone and on the validation error; lower test error."""
    models = {"original": originals, "overparameterized": overparameterized}
    diverged = [name for name, runs in models.items() if any(o.diverged for o in runs)]
    errors = {name: [o.test_error for o in runs] for name, runs in models.items()}
    return [
        *_mnist_speed_claims(originals, overparameterized, diverged, setting),
        *_mnist_test_error_claims(errors, decided=not diverged, setting=setting),
    ]


_MNIST_SPEED_ROWS = (  # (claim, criterion, per-step field, smoothing window, unit)
    (_MNIST_SPEED, _MNIST_CRITERION, "minibatch_loss", SMOOTHING_WINDOW, "step"),
    (
        "MNIST: the overparameterized tutorial's cross-entropy (without the L2 term) converges considerably faster",
        _MNIST_CRITERION.replace("minibatch loss", "cross-entropy"),
        "cross_entropy",
        SMOOTHING_WINDOW,
        "step",
    ),
    (
        "MNIST: the overparameterized tutorial's validation error falls considerably faster",
        _MNIST_CRITERION.replace(
            f"({SMOOTHING_WINDOW}-step trailing mean) minibatch loss",
            f"({VALIDATION_WINDOW}-evaluation trailing mean) validation error",
        ).replace("final smoothed loss", "final smoothed validation error"),
        "validation_error",
        VALIDATION_WINDOW,
        "evaluation",
    ),
)


def _mnist_speed_claims(originals, overparameterized, diverged, setting):
    """The "considerably faster" rule on the printed loss, the cross-entropy and the
    validation error, each on the mean over seeds (INCONCLUSIVE if a model diverged)."""
    claims = []
    for claim, criterion, field, window, unit in _MNIST_SPEED_ROWS:
        original, contender = _seed_mean(originals, field), _seed_mean(overparameterized, field)
        if diverged or original is None or contender is None:
            text = f"a model diverged: {', '.join(diverged)}" if diverged else f"{field} was not recorded"
            claims.append(Claim("figure5", claim, criterion, text, verdict(None), setting))
        else:
            holds, text = faster_series(original, contender, window, unit)
            claims.append(Claim("figure5", claim, criterion, text, verdict(holds), setting))
    return claims


def _mnist_test_error_claims(errors, decided, setting):
    """Both models reach the tutorial's test error; the overparameterized one a lower one
    (every seed below every seed of the original)."""
    error_text = ", ".join(f"{name}: {_range(values)}%" for name, values in errors.items())
    reached = all(e < TUTORIAL_TEST_ERROR_LIMIT for values in errors.values() for e in values) if decided else None
    lower = None
    if decided:
        if max(errors["overparameterized"]) < min(errors["original"]):
            lower = True
        elif max(errors["original"]) <= min(errors["overparameterized"]):
            lower = False
    return [
        Claim("figure5", _TEST_CLAIM, _TEST_CRITERION, error_text, verdict(reached), setting),
        Claim(
            "figure5",
            "MNIST: the overparameterized tutorial reaches a lower test error",
            "every seed's test error of the overparameterized model below every seed's of the original "
            "(FAIL if the other way round or equal, INCONCLUSIVE if the ranges overlap or a model diverged)",
            error_text,
            verdict(lower),
            setting,
        ),
    ]


def mnist_tracking(factored, preconditioned, setting=""):
    """The preconditioned original (Eq. 10, N = 2, on the original architecture) tracks
    the factored model: smoothed printed losses within MNIST_TRACKING_FACTOR."""
    claim = (
        "MNIST: the original architecture trained with the end-to-end preconditioner (N = 2) tracks the "
        "overparameterized model"
    )
    criterion = (
        f"trailing {SMOOTHING_WINDOW}-step mean of the printed loss within a factor "
        f"{MNIST_TRACKING_FACTOR:g} of the factored model's at every 100th step from step 100 on "
        "(INCONCLUSIVE if either diverged)"
    )
    if factored.diverged or preconditioned.diverged:
        return Claim("figure5", claim, criterion, "a run diverged", verdict(None), setting)
    a, b = smooth(factored.minibatch_loss, SMOOTHING_WINDOW), smooth(preconditioned.minibatch_loss, SMOOTHING_WINDOW)
    length = min(len(a), len(b))
    steps = np.arange(100, length, 100) if length > 100 else np.arange(length)  # a short (smoke) run: every step
    ratios = np.maximum(a[steps] / b[steps], b[steps] / a[steps])
    worst = int(steps[np.argmax(ratios)])
    measured = (
        f"largest ratio {ratios.max():.3g} at step {worst + 1:,} (factored {a[worst]:.3f}, preconditioned "
        f"{b[worst]:.3f}); final {a[-1]:.3f} vs {b[-1]:.3f}; test error {factored.test_error:.2f}% vs "
        f"{preconditioned.test_error:.2f}%"
    )
    return Claim("figure5", claim, criterion, measured, verdict(bool(ratios.max() <= MNIST_TRACKING_FACTOR)), setting)


# ---------------------------------------------------------------------------- Appendix C


def tail_loss(minibatch_loss, diverged):
    """Mean minibatch loss over the last TAIL_FRACTION of a run (inf if it diverged)."""
    losses = np.asarray(minibatch_loss, dtype=float)
    if diverged or not np.isfinite(losses).all():
        return float("inf")
    tail = max(int(len(losses) * TAIL_FRACTION), 1)
    return float(losses[-tail:].mean())


APPENDIX_C = "appendix_c"
# Appendix C, the init-std grid of the new factors (paper: "almost identical curves, all
# far faster than the baseline"), judged on the printed loss as the paper plots it and on
# its cross-entropy alone, each as the tail mean of `tail_loss`, over the stds whose run
# did not diverge (a diverged run is named, never compared; INCONCLUSIVE if no std or the
# baseline finished). "Almost identical": the largest tail value at most
# STD_IDENTICAL_FACTOR times the smallest (Figure 2's "negligible effect of width"
# tolerance, reused rather than chosen for this grid). "Far faster than the baseline":
# every tail value at most 1/FASTER_FACTOR of the baseline's, the original model at the
# grid's own base rate STD_GRID_LR (the speed-up criteria's factor 2).
STD_IDENTICAL_FACTOR = WIDTH_TOLERANCE
STD_GRID_LR = 0.01
APPENDIX_C_QUANTITIES = {"last_tenth_loss": "printed loss", "last_tenth_cross_entropy": "cross-entropy"}


def appendix_c_stds(baseline, by_std, quantity="last_tenth_loss", setting="", figure=APPENDIX_C):
    """Appendix C, init-std grid: two claims on one tail quantity. `baseline`: the
    original's tail value at base rate STD_GRID_LR (inf or None if it diverged or was not
    run); `by_std`: {init std: tail value, inf if that run diverged}."""
    name = APPENDIX_C_QUANTITIES[quantity]
    finished = {s: v for s, v in by_std.items() if np.isfinite(v)}
    diverged = sorted(s for s in by_std if s not in finished)
    values = ", ".join(f"std {s:g}: {v:.4f}" for s, v in sorted(finished.items()))
    notes = "".join(f"; std {s:g} diverged (not compared)" for s in diverged)
    baseline_known = baseline is not None and np.isfinite(baseline)
    if not finished:
        identical = faster_all = None
        measured = "every init std diverged"
    else:
        low, high = min(finished.values()), max(finished.values())
        identical = bool(high <= STD_IDENTICAL_FACTOR * low)
        faster_all = bool(high * FASTER_FACTOR <= baseline) if baseline_known else None
        ratio = f"largest / smallest {high / low:.3g}" if low > 0 else "smallest 0"
        base = (
            f"original at lr {STD_GRID_LR:g}: {baseline:.4f}"
            if baseline_known
            else "the baseline diverged or was not run"
        )
        measured = f"{values} ({ratio}; {base}){notes}"
    tail = (
        f"mean {name} over the last {TAIL_FRACTION:.0%} of the steps at base rate {STD_GRID_LR:g}, "
        "stds that did not diverge"
    )
    return [
        _setting_row(
            figure,
            f"MNIST, init std of the new factors: almost identical curves ({name})",
            f"{tail}: largest <= {STD_IDENTICAL_FACTOR:g} x smallest (INCONCLUSIVE if every std diverged)",
            measured,
            identical,
            setting,
        ),
        _setting_row(
            figure,
            f"MNIST, init std of the new factors: all far faster than the baseline ({name})",
            f"{tail}: every one <= 1/{FASTER_FACTOR:g} of the original model's at the same rate "
            "(INCONCLUSIVE if every std or the original diverged)",
            measured,
            faster_all,
            setting,
        ),
    ]


def appendix_c(best_original, best_overparameterized, setting="", figure=APPENDIX_C, on_grid=None, rho=None):
    """Appendix C: the overparameterized model is faster at each model's best base rate.
    Arguments: (base learning rate, tail loss) of each model's best run, or None if every
    run of that model diverged. With `rho`, the best rates were refined between the best
    grid rate's neighbours to a ratio of `rho` (`reproduce.appendix_c.refinement`): the
    claim is judged on the refined best, and `on_grid` (the same pair over the paper's
    grid alone) is reported beside it."""

    def judged(original, overparameterized):
        if original is None or overparameterized is None:
            return "every base learning rate of a model diverged", None
        measured = (
            f"original: lr {original[0]:g}, {original[1]:.4f}; overparameterized: "
            f"lr {overparameterized[0]:g}, {overparameterized[1]:.4f}"
        )
        return measured, overparameterized[1] < original[1]

    measured, holds = judged(best_original, best_overparameterized)
    criterion = (
        f"mean minibatch loss over the last {TAIL_FRACTION:.0%} of the steps, lowest over the base-rate grid "
        "(diverged runs excluded): overparameterized < original (INCONCLUSIVE if every rate of a model diverged)"
    )
    if rho is not None:
        criterion = criterion.replace(
            "the base-rate grid", f"the base-rate grid refined between the best rate's neighbours to a ratio {rho:g}"
        )
        grid_measured, grid_holds = judged(*on_grid)
        answer = {True: "holds", False: "does not hold", None: "undecided"}[grid_holds]
        measured += f" (on the paper's grid alone: {grid_measured}; the claim {answer})"
    return [
        _setting_row(
            figure,
            "MNIST: the overparameterized tutorial is faster at each model's best base learning rate",
            criterion,
            measured,
            holds,
            setting,
        )
    ]


# ---------------------------------------------------------------------------- speed-up


def speedup_holds(speedups, factor):
    """S >= factor at the tightest level either family reaches: True, False, or None
    (no level reached, or only a bound that does not decide)."""
    tightest = speedup_module.tightest(speedups)
    return None if tightest is None else tightest.at_least(factor)


def speedup_not_faster(speedups, limit=None):
    """S <= limit (default NOT_FASTER_SPEEDUP) at the tightest level: True/False/None."""
    tightest = speedup_module.tightest(speedups)
    return None if tightest is None else tightest.at_most(NOT_FASTER_SPEEDUP if limit is None else limit)


def fmt_speedup(s):
    """'S = 3.2 at e = 0.01 (T_B 3,000, T_C 940)', with > / < for bounds."""
    if s is None:
        return "no level reached by either"
    sign = {speedup_module.EXACT: "=", speedup_module.LOWER: ">", speedup_module.UPPER: "<"}[s.kind]
    return (
        f"S {sign} {s.value:.3g} at e = {s.level:.3g} (T_B {fmt_time(s.baseline_time)}, "
        f"T_C {fmt_time(s.contender_time)})"
    )


def fmt_time(value):
    return "not reached" if not np.isfinite(value) else f"{int(value):,}"


@dataclasses.dataclass(frozen=True)
class Comparison:
    """One contender family against one baseline family: the speed-ups at every level
    with both families' learning rates tuned (`tfovp.tuning`), the same on the grid
    alone, the budget they were measured with, and whether either diverged at every
    rate. Without tuning, `speedups` are the grid's and `grid_speedups` is None.

    `baseline_rates` / `contender_rates`: the `tfovp.tuning.TunedRate` of each family
    at every level (None without tuning)."""

    contender: str
    baseline: str
    speedups: tuple
    budget: int
    any_all_diverged: bool
    grid_speedups: tuple | None = None
    rho: float | None = None
    baseline_rates: tuple | None = None
    contender_rates: tuple | None = None

    @property
    def tuned(self):
        return self.grid_speedups is not None

    def to_json(self, rates=True):
        """A JSON-ready dict (inf times as null; without the tuned rates per level unless
        `rates`, e.g. where a CSV holds them); `from_json` reads it back."""
        out = {
            "contender": self.contender,
            "baseline": self.baseline,
            "budget": self.budget,
            "any_all_diverged": self.any_all_diverged,
            "levels": [s.level for s in self.speedups],
            "tuned": self.tuned,
            "rho": self.rho,
            **_speedup_lists(self.speedups),
        }
        if self.tuned:
            out["grid"] = _speedup_lists(self.grid_speedups)
        if self.tuned and rates:
            out["baseline_rates"] = [r.to_json() for r in self.baseline_rates]
            out["contender_rates"] = [r.to_json() for r in self.contender_rates]
        return out

    @classmethod
    def from_json(cls, data, name=None):
        """The inverse of `to_json`; `name` ("<contender> vs <baseline> (lp)", the key of a
        figure's JSON) names the families of records written before they held them."""
        from tfovp.tuning import TunedRate

        def rates(key):
            return None if data.get(key) is None else tuple(TunedRate.from_json(r) for r in data[key])

        if "contender" in data:
            contender, baseline = data["contender"], data["baseline"]
        else:
            contender, baseline = name.rsplit(" (l", 1)[0].split(" vs ")
        return cls(
            contender,
            baseline,
            _speedups_from(data["levels"], data),
            int(data["budget"]),
            bool(data["any_all_diverged"]),
            grid_speedups=_speedups_from(data["levels"], data["grid"]) if data.get("grid") else None,
            rho=data.get("rho"),
            baseline_rates=rates("baseline_rates"),
            contender_rates=rates("contender_rates"),
        )

    def on_grid(self):
        """The same comparison judged on the grid alone (the paper's protocol)."""
        if not self.tuned:
            return self
        return dataclasses.replace(
            self, speedups=self.grid_speedups, grid_speedups=None, rho=None, baseline_rates=None, contender_rates=None
        )


def _speedup_lists(speedups):
    def time(value):
        return None if value == float("inf") else value

    return {
        "speedup": [s.value for s in speedups],
        "kind": [s.kind for s in speedups],
        "baseline_time": [time(s.baseline_time) for s in speedups],
        "contender_time": [time(s.contender_time) for s in speedups],
    }


def _speedups_from(levels, data):
    def time(value):
        return float("inf") if value is None else float(value)

    return tuple(
        speedup_module.SpeedUp(float(level), time(tb), time(tc), v, k)
        for level, tb, tc, v, k in zip(
            levels, data["baseline_time"], data["contender_time"], data["speedup"], data["kind"]
        )
    )


def compare(contender, contender_family, baseline, baseline_family, budget):
    """The Comparison of two trained CurveFamily records (tuned where they were)."""
    fc, fb = contender_family, baseline_family

    def values(c, b):
        return tuple(
            speedup_module.speedups(speedup_module.family_times(b), speedup_module.family_times(c), budget, b.levels)
        )

    either = speedup_module.all_diverged(fb) or speedup_module.all_diverged(fc)
    grid = values(fc, fb)
    tuned_c, tuned_b = fc.tuning(), fb.tuning()
    if tuned_c is None or tuned_b is None:
        return Comparison(contender, baseline, grid, budget, either)
    return Comparison(
        contender,
        baseline,
        values(fc.with_tuned(), fb.with_tuned()),
        budget,
        either,
        grid_speedups=grid,
        rho=tuned_b.rho[-1],
        baseline_rates=tuple(tuned_b.per_level()),
        contender_rates=tuple(tuned_c.per_level()),
    )


def speedup_claim(figure, claim, comparisons, factor=None, setting="", not_faster=False):
    """One claim row over several comparisons: every contender faster than its baseline
    by `factor` (or, with `not_faster`, none faster than NOT_FASTER_SPEEDUP) at the
    tightest level either reaches; INCONCLUSIVE where a family diverged at every rate.
    Judged on the comparisons' `speedups`: with both families tuned where they were
    (`Comparison.on_grid()` gives the paper's grid); the grid's S is reported beside."""
    holds = []
    for c in comparisons:
        if c.any_all_diverged:
            holds.append(None)
        elif not_faster:
            holds.append(speedup_not_faster(c.speedups))
        else:
            holds.append(speedup_holds(c.speedups, factor))
    rule = f"S <= {NOT_FASTER_SPEEDUP:.3g}" if not_faster else f"S >= {factor:g}"
    budget = comparisons[0].budget if comparisons else 0
    tuned = [c for c in comparisons if c.tuned]
    rates = (
        f"each family's learning rate tuned to within a factor {tuned[0].rho:g} at every level (tfovp.tuning: the "
        "paper's grid, its ends extended x5, the best rate's bracket refined geometrically)"
        if tuned
        else "best rate of the grid per level"
    )
    criterion = (
        f"speed-up S = T_baseline / T_contender at the tightest level e of relative excess "
        f"(L - L*)/(L(W=0) - L*) either family settles below within {budget:,} iterations, {rates}: {rule} "
        "(a bound counts when it decides; INCONCLUSIVE if no level is reached or a family diverged at every rate)"
    )

    def measured(c):
        if c.any_all_diverged:
            return f"{c.contender} vs {c.baseline}: a family diverged at every rate"
        text = f"{c.contender} vs {c.baseline}: {fmt_speedup(speedup_module.tightest(c.speedups))}"
        if c.tuned:
            text += f" tuned; paper's grid: {fmt_speedup(speedup_module.tightest(c.grid_speedups))}"
        return text

    return _setting_row(
        figure,
        claim,
        criterion,
        "; ".join(measured(c) for c in comparisons),
        _all(holds) if comparisons else None,
        setting,
    )


# ---------------------------------------------------------------------------- Theorem 2

# Theorem 2: the depth-N field is not a gradient when its circulation around Gamma_{r,R}
# is at least this many times the quadrature error; a gradient field (N = 1) has a
# circulation within GRADIENT_TOLERANCE times the quadrature error (plus round-off,
# 1e-12 of the scale ||grad L(0)|| pi R).
CIRCULATION_MARGIN = 100.0
GRADIENT_TOLERANCE = 2.0


def theorem2(circulations, setting=""):
    """Claims from {depth: circulation.Circulation}: N = 1 has zero circulation (a gradient
    field; the check of the method), every N >= 3 a non-zero one; N = 2 is reported in
    the measurement only (the paper's footnote: it needs extra assumptions)."""

    def text(c):
        return f"N={c.depth}: {c.value:.3g} (quadrature error {c.error:.2g}, r={c.inner:.3g}, R={c.outer:.3g})"

    rows = []
    if 1 in circulations:
        c = circulations[1]
        rows.append(
            _setting_row(
                "theorem2",
                "N = 1 (plain gradient): zero circulation, the check of the measurement",
                f"|circulation| <= {GRADIENT_TOLERANCE:g} x the Richardson estimate of the quadrature error "
                "(+ 1e-12 x ||grad L(0)|| pi R)",
                text(c),
                abs(c.value) <= GRADIENT_TOLERANCE * c.error + 1e-12 * c.scale,
                setting,
            )
        )
    deep = [c for depth, c in sorted(circulations.items()) if depth >= 3]
    if deep:
        rows.append(
            _setting_row(
                "theorem2",
                "N >= 3: the end-to-end field is not a gradient field (no regularizer reproduces it)",
                f"|circulation| >= {CIRCULATION_MARGIN:g} x the quadrature error for every N >= 3 "
                "(N = 2 reported only)",
                "; ".join(text(c) for depth, c in sorted(circulations.items()) if depth >= 2),
                all(abs(c.value) >= CIRCULATION_MARGIN * c.error for c in deep),
                setting,
            )
        )
    return rows


# ---------------------------------------------------------------------------- Section 7 / App. B


def appendix_b(gd_time, rule_time, net_time, bound, budget, setting=""):
    """Claims of Sec. 7 / App. B from the iterations until |w2 - y2| <= y2 / 2 of GD at
    its stability limit, the end-to-end rule (N = 2) and a real depth-2 net (None: every
    rate diverged; inf: not within `budget`). The speed-up T_GD / T is compared with the
    appendix's bound y1 / (4 eps1); if GD does not get there, T_GD > budget gives a lower
    bound."""

    def row(claim, contender_time):
        if gd_time is None or contender_time is None:
            return _setting_row(
                "section7", claim, criterion, "every learning rate of a compared run diverged", None, setting
            )
        values = speedup_module.speedups([gd_time], [contender_time], budget, levels=[0.5])[0]
        measured = (
            f"T_GD {fmt_time(gd_time)}, T {fmt_time(contender_time)}: "
            + fmt_speedup(values).split(" at e")[0]
            + f" (bound y1/(4 eps1) = {bound:.4g})"
        )
        return _setting_row("section7", claim, criterion, measured, values.at_least(bound), setting)

    criterion = (
        "iterations until |w2 - y2| <= y2/2, GD at the fastest stable rate up to its bound 2/y1^2: "
        "speed-up T_GD / T >= y1 / (4 eps1) (a lower bound counts if GD does not get there)"
    )
    return [
        row("App. B: the end-to-end rule (N = 2, eta = 1/(2 eps1 y1^2)) beats GD by more than y1/(4 eps1)", rule_time),
        row(
            "App. B: a real depth-2 net under GD (balanced init, fastest stable eta up to the rule's) does too",
            net_time,
        ),
    ]


# ---------------------------------------------------------------------------- the 2024 student reproduction

# PAPER Sec. 6 and ../shared/seeds/002: a student report (PyTorch) that disagrees with the
# paper. Its findings are judged here in its own measure, the final training loss of the
# best rate of the learning-rate grid ("we selected the run with the best training loss at
# the last epoch"), per seed. A model is "better" than another when its final loss is at
# least BETTER_MARGIN lower (relative), so that round-off never decides; "consistently"
# means in every seed. "Depends heavily on the width": across the widths of a depth > 1,
# the median-over-seeds final losses differ by more than Figure 2's WIDTH_TOLERANCE.
# "Stochastic": some model's final loss varies over the seeds by more than SEED_SPREAD
# (max / min), the same factor.
BETTER_MARGIN = 0.01
SEED_SPREAD = WIDTH_TOLERANCE
PEER = "peer_2024"


@dataclasses.dataclass(frozen=True)
class PeerRuns:
    """Final training losses of one setup of the study: {(init, depth, width): (seeds,)
    array}, the best rate of the grid (or of the tuned rates) per seed; depth 1 has width 1."""

    finals: dict

    def of(self, init, depth, width=1):
        return np.asarray(self.finals[(init, depth, width)], dtype=float)

    def widths(self, init, depth):
        return sorted(w for (i, d, w) in self.finals if i == init and d == depth)

    def depths(self, init):
        return sorted({d for (i, d, _) in self.finals if i == init})

    def best_width(self, init, depth):
        """The per-seed final loss of the depth's best width (lowest median)."""
        return min((self.of(init, depth, w) for w in self.widths(init, depth)), key=np.median)


def _better(a, b):
    """Per seed, `a` at least BETTER_MARGIN below `b`."""
    return a <= (1 - BETTER_MARGIN) * b


def peer_linear_better(runs, init="random", setting="", figure=PEER):
    """ "The 1-layer linear regression is consistently better" (Ethanol): depth 1 below
    every deeper model (every width), in every seed."""
    linear = runs.of(init, 1)
    deeper = [(d, w) for d in runs.depths(init) if d > 1 for w in runs.widths(init, d)]
    holds = all(_better(linear, runs.of(init, d, w)).all() for d, w in deeper) if deeper else None
    ratios = ", ".join(f"depth {d} width {w}: {np.median(runs.of(init, d, w) / linear):.3g}" for d, w in deeper)
    return _setting_row(
        figure,
        "student: the linear model is consistently better than deeper nets",
        f"final training loss (best rate of the grid) of depth 1 at least {BETTER_MARGIN:.0%} below every deeper "
        "net's, every width, in every seed",
        f"deeper / linear, median over seeds: {ratios}",
        holds,
        setting,
    )


def peer_deeper_better(runs, init="random", setting="", figure=PEER):
    """ "2-layer and 3-layer networks consistently do better" (Abalone): every depth > 1,
    at its best width, below depth 1 in every seed."""
    linear = runs.of(init, 1)
    deeper = [d for d in runs.depths(init) if d > 1]
    holds = all(_better(runs.best_width(init, d), linear).all() for d in deeper) if deeper else None
    ratios = ", ".join(f"depth {d}: {np.median(runs.best_width(init, d) / linear):.3g}" for d in deeper)
    return _setting_row(
        figure,
        "student: deeper nets are consistently better than the linear model",
        f"final training loss of every depth > 1 (its best width) at least {BETTER_MARGIN:.0%} below depth 1's, "
        "in every seed",
        f"deeper (best width) / linear, median over seeds: {ratios}",
        holds,
        setting,
    )


def peer_width_matters(runs, init="random", setting="", figure=PEER):
    """ "The results heavily depend on the width of the layers"."""
    spreads = {}
    for d in runs.depths(init):
        widths = runs.widths(init, d)
        if d > 1 and len(widths) > 1:
            medians = [np.median(runs.of(init, d, w)) for w in widths]
            spreads[d] = max(medians) / min(medians)
    holds = any(v > WIDTH_TOLERANCE for v in spreads.values()) if spreads else None
    return _setting_row(
        figure,
        "student: the results depend heavily on the width",
        f"for some depth > 1, the median final losses over its widths differ by more than a factor {WIDTH_TOLERANCE:g}"
        " (INCONCLUSIVE with one width)",
        ", ".join(f"depth {d}: largest / smallest {v:.3g}" for d, v in spreads.items()) or "one width only",
        holds,
        setting,
    )


def _largest_spread(runs, init):
    return max(
        (float(np.max(runs.of(init, d, w)) / np.min(runs.of(init, d, w))), d, w)
        for d in runs.depths(init)
        for w in runs.widths(init, d)
    )


def peer_stochastic(runs, init="random", setting="", figure=PEER):
    """ "We were surprised by the stochasticity of the results" (random init)."""
    spread, d, w = _largest_spread(runs, init)
    return _setting_row(
        figure,
        "student: the results vary from run to run (random init)",
        f"some model's final loss varies over the seeds by more than a factor {SEED_SPREAD:g} (max / min)",
        f"largest spread {spread:.3g} (depth {d}, width {w})",
        spread > SEED_SPREAD,
        setting,
    )


def peer_inits(runs, setting="", figure=PEER, inits=("random", "near_zero", "orthogonal")):
    """The report's init findings: much less run-to-run variation with near-zero and
    near-identity (orthogonal) init than with random init; near identity faster for the
    deep nets; still no speed-up of depth with either."""
    random, near_zero, identity = inits
    spreads = {i: _largest_spread(runs, i)[0] for i in inits}
    less = spreads[near_zero] < spreads[random] and spreads[identity] < spreads[random]
    deeper = [(d, w) for d in runs.depths(identity) if d > 1 for w in runs.widths(identity, d)]
    faster = [np.median(runs.of(identity, d, w)) < np.median(runs.of(near_zero, d, w)) for d, w in deeper]
    consistent = {
        i: all(_better(runs.best_width(i, d), runs.of(i, 1)).all() for d in runs.depths(i) if d > 1)
        for i in (near_zero, identity)
    }
    ratio_text = ", ".join(
        f"depth {d} width {w}: {np.median(runs.of(identity, d, w)) / np.median(runs.of(near_zero, d, w)):.3g}"
        for d, w in deeper
    )
    return [
        _setting_row(
            figure,
            "student: much less run-to-run variation with near-zero and near-identity init",
            "the largest seed spread (max / min final loss) with near-zero init and with orthogonal init both below "
            "random init's",
            ", ".join(f"{i}: {v:.3g}" for i, v in spreads.items()),
            less,
            setting,
        ),
        _setting_row(
            figure,
            "student: near-identity init converges faster than near-zero for the deep nets",
            "median final loss with orthogonal init below near-zero init's for every depth > 1 and width",
            f"orthogonal / near-zero: {ratio_text}",
            all(faster) if faster else None,
            setting,
        ),
        _setting_row(
            figure,
            "student: with near-zero or near-identity init, deeper nets are still not clearly faster",
            f"with neither init is every depth > 1 (best width) at least {BETTER_MARGIN:.0%} below depth 1 in every "
            "seed",
            ", ".join(f"{i}: deeper consistently better {v}" for i, v in consistent.items()),
            not any(consistent.values()),
            setting,
        ),
    ]
