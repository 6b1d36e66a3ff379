"""Every claim criterion of the reproduction, with its thresholds as named values.

The thresholds were fixed before the runs that judge them (see results/README.md) and
are not command-line options: a verdict must not depend on a knob turned after seeing
the data. Each function takes typed measurements and returns `Claim` rows.

Rules shared by all criteria:
* "faster" compares iterations until the relative excess loss stays below the level
  (`tfovp.study.convergence`), best learning rate of each curve; a curve that reaches
  the level beats one that does not within the budget.
* When the data cannot decide, the verdict is INCONCLUSIVE: neither curve reaches the
  level, or every learning rate of a compared curve diverged (a curve that diverges at
  every rate of the grid says nothing about its speed). The one exception is the
  paper's own wording for Figure 5 (App. C): "near-zero depth 8 is stuck" counts
  divergence at every rate as being stuck.
"""

import dataclasses

import numpy as np

from tfovp.study.claims import Claim, fmt_iterations, verdict

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
    """What the MNIST claims need of one trained model."""

    minibatch_loss: np.ndarray  # per step, as the tutorial prints it
    test_error: float  # percent; NaN if the run diverged
    diverged: bool


def mnist(original, overparameterized, setting=""):
    """Claims of Figure 5 (right) from the `MnistOutcome` of both models."""
    figure = "figure5"
    diverged = original.diverged or overparameterized.diverged
    errors = f"original: {original.test_error:.2f}%, overparameterized: {overparameterized.test_error:.2f}%"
    if diverged:
        speed = Claim(
            figure,
            "MNIST: the overparameterized tutorial converges considerably faster",
            _MNIST_CRITERION,
            "a model diverged: "
            + ", ".join(
                name for name, o in (("original", original), ("overparameterized", overparameterized)) if o.diverged
            ),
            verdict(None),
            setting,
        )
        return [speed, Claim(figure, _TEST_CLAIM, _TEST_CRITERION, errors, verdict(None), setting)]
    smoothed = {
        name: smooth(o.minibatch_loss, SMOOTHING_WINDOW)
        for name, o in (("original", original), ("overparameterized", overparameterized))
    }
    steps = len(smoothed["original"])
    checkpoints = [max(int(steps * q) - 1, 0) for q in CHECKPOINT_FRACTIONS]
    lower = [smoothed["overparameterized"][i] < smoothed["original"][i] for i in checkpoints]
    reached = np.flatnonzero(smoothed["overparameterized"] <= smoothed["original"][-1])
    first = int(reached[0]) if reached.size else None
    measured = ", ".join(
        f"step {i + 1}: {smoothed['original'][i]:.3f} vs {smoothed['overparameterized'][i]:.3f}" for i in checkpoints
    )
    return [
        Claim(
            figure,
            "MNIST: the overparameterized tutorial converges considerably faster",
            _MNIST_CRITERION,
            f"original vs overparameterized at {measured}; original's final level reached at step "
            f"{fmt_iterations(first)} of {steps:,}",
            verdict(all(lower) and first is not None and first <= REACH_FRACTION * steps),
            setting,
        ),
        Claim(
            figure,
            _TEST_CLAIM,
            _TEST_CRITERION,
            errors,
            verdict(
                original.test_error < TUTORIAL_TEST_ERROR_LIMIT
                and overparameterized.test_error < TUTORIAL_TEST_ERROR_LIMIT
            ),
            setting,
        ),
    ]


_MNIST_CRITERION = (
    f"smoothed ({SMOOTHING_WINDOW}-step) minibatch loss lower at 1/4, 1/2, 3/4 and the end of "
    f"training, and the original's final smoothed loss reached within 3/4 of the steps "
    "(INCONCLUSIVE if a model diverged)"
)
_TEST_CLAIM = "MNIST: both models reach the tutorial's test error (about 0.8 %)"
_TEST_CRITERION = f"test error < {TUTORIAL_TEST_ERROR_LIMIT:g} % for both models (INCONCLUSIVE if a model diverged)"


# ---------------------------------------------------------------------------- Appendix C


def tail_loss(minibatch_loss, diverged):
    """Mean minibatch loss over the last TAIL_FRACTION of a run (inf if it diverged)."""
    losses = np.asarray(minibatch_loss, dtype=float)
    if diverged or not np.isfinite(losses).all():
        return float("inf")
    tail = max(int(len(losses) * TAIL_FRACTION), 1)
    return float(losses[-tail:].mean())


def appendix_c(best_original, best_overparameterized, setting=""):
    """Appendix C: the overparameterized model is faster at each model's best base rate.
    Arguments: (base learning rate, tail loss) of each model's best run, or None if every
    run of that model diverged."""
    if best_original is None or best_overparameterized is None:
        measured, holds = "every base learning rate of a model diverged", None
    else:
        measured = (
            f"original: lr {best_original[0]:g}, {best_original[1]:.4f}; overparameterized: "
            f"lr {best_overparameterized[0]:g}, {best_overparameterized[1]:.4f}"
        )
        holds = best_overparameterized[1] < best_original[1]
    return [
        _setting_row(
            "appendix_c",
            "MNIST: the overparameterized tutorial is faster at each model's best base learning rate",
            f"mean minibatch loss over the last {TAIL_FRACTION:.0%} of the steps, lowest over the base-rate grid "
            "(diverged runs excluded): overparameterized < original (INCONCLUSIVE if every rate of a model diverged)",
            measured,
            holds,
            setting,
        )
    ]
