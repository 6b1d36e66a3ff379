"""The claims of the linear experiments: Figure 2 (the end-to-end rule tracks depth-N GD,
width, depth), Figure 3 (l2 not faster, l4 much faster), Figure 4 (AdaGrad, AdaDelta)
and Figure 5, left (near-zero init stuck, identity init moves at once)."""

import dataclasses

from reproduce.study.claims import fmt_iterations
from reproduce.study.criteria.rules import Speed, all_hold, faster, setting_row
from reproduce.study.criteria.thresholds import (
    AT_ONCE_FRACTION,
    LATE_FRACTION,
    MOVED_LEVEL,
    MUCH_FASTER_FACTOR,
    NOT_FASTER_FRACTION,
    TRACKING_TOLERANCE,
    WIDTH_TOLERANCE,
)


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
    return setting_row(
        "figure2",
        f"l{p:g}: the end-to-end rule tracks depth-N GD",
        f"for every depth and width (same eta, same W_e(0)), max over iterations of ‖W_e(net) - W_e(rule)‖ / "
        f"‖W*‖ and of the gap between their relative excess losses (L - L*)/(L0 - L*) both <= "
        f"{TRACKING_TOLERANCE:g} (inf: the rule diverged; INCONCLUSIVE where both diverged or no depth had a "
        "converging rate)",
        measured or "no depth had a converging learning rate",
        all_hold([t.tracks() for t in pairs]) if pairs else None,
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
    return setting_row(
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
    return setting_row(
        "figure2",
        "l4: deeper converges faster",
        "iterations to the level, best rate each: depth-3 net < depth-2 net",
        f"depth 3: {fmt_iterations(deep.iterations)}, depth 2: {fmt_iterations(shallow.iterations)}",
        faster(deep, shallow),
        setting,
    )


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
        holds = all_hold([judge(speeds[(n, p)], speeds[(1, p)]) for n in deeper])
        rows.append(setting_row(figure, claim, criterion, measured, holds, setting))
    return rows


def figure4(p, *, gd, adagrad, adadelta, adam, adam_depth2, adam_depth3, setting=""):
    """Claims of Figure 4 from one `Curve` per role: the depth-3 net under GD against the
    linear model under AdaGrad and AdaDelta (left); Adam on the linear model against Adam on
    depth-2 and depth-3 nets (right)."""
    left, right = (gd, adagrad, adadelta), (adam, adam_depth2, adam_depth3)
    return [
        setting_row(
            "figure4",
            f"l{p:g}: depth-3 GD beats AdaGrad and AdaDelta on the linear model",
            "iterations to the level, best rate each: depth-3 GD < AdaGrad and < AdaDelta",
            ", ".join(f"{c.label}: {fmt_iterations(c.speed.iterations)}" for c in left),
            all_hold([faster(gd.speed, c.speed) for c in (adagrad, adadelta)]),
            setting,
        ),
        setting_row(
            "figure4",
            f"l{p:g}: depth accelerates Adam",
            "iterations to the level, best rate each: Adam on depth 2 and on depth 3 < Adam on depth 1",
            ", ".join(f"{c.label}: {fmt_iterations(c.speed.iterations)}" for c in right),
            all_hold([faster(c.speed, adam.speed) for c in (adam_depth2, adam_depth3)]),
            setting,
        ),
    ]


def figure5(p, *, stuck, late, identity_shallow, identity_deep, budget, setting=""):
    """Claims of Figure 5 (left) of a run of `budget` iterations, from the
    `convergence.SeedSummary` of each role: `stuck` the depth-8 net and `late` the depth-4
    net from near-zero init, `identity_shallow` / `identity_deep` the depth-4 and depth-8
    nets from identity init."""
    stuck_rates = stuck.rates
    finals = [r.final_relative_excess for r in stuck_rates if not r.diverged]
    is_stuck = all(f is None or f > MOVED_LEVEL for f in finals)  # every rate diverged counts as stuck (App. C)
    late_iterations = late.best_iterations_to(MOVED_LEVEL)
    if late.all_diverged:
        late_text, moves_late = "every rate diverged", None
    elif late_iterations is None:  # never moving is not moving late: it is being stuck
        late_text, moves_late = f"best rate: never moved within the {budget:,}-iteration budget", False
    else:
        late_text, moves_late = f"best rate: {late_iterations:,}", late_iterations >= LATE_FRACTION * budget
    identity = (identity_shallow, identity_deep)
    at_once = [summary.best_iterations_to(MOVED_LEVEL) for summary in identity]
    moves_at_once = all_hold(
        None if summary.all_diverged else (a is not None and a <= AT_ONCE_FRACTION * budget)
        for summary, a in zip(identity, at_once)
    )
    return [
        setting_row(
            "figure5",
            f"l{p:g}: near-zero init, depth 8 is stuck at the end of the budget (paper: 100K)",
            f"every rate diverges or ends ({budget:,} iterations) with relative excess > {MOVED_LEVEL:g} "
            "(divergence at every rate counts as stuck, as in the paper's App. C)",
            f"{sum(r.diverged for r in stuck_rates)} of {len(stuck_rates)} rates diverged; lowest final "
            f"relative excess of the others: {min(finals) if finals else 'none'}",
            is_stuck,
            setting,
        ),
        setting_row(
            "figure5",
            f"l{p:g}: near-zero init, depth 4 moves only late (paper: ~65K)",
            f"best rate moves (stays below relative excess {MOVED_LEVEL:g}) within the budget, after >= "
            f"{LATE_FRACTION:g} x budget = {int(LATE_FRACTION * budget):,} iterations (FAIL if it never moves: "
            "that is being stuck; INCONCLUSIVE if every rate diverged)",
            late_text,
            moves_late,
            setting,
        ),
        setting_row(
            "figure5",
            f"l{p:g}: identity init, depths 4 and 8 move at once",
            f"both stay below relative excess {MOVED_LEVEL:g} within {AT_ONCE_FRACTION:g} x budget = "
            f"{int(AT_ONCE_FRACTION * budget):,} iterations (INCONCLUSIVE if every rate of one diverged and the "
            "other moved at once)",
            f"depth 4: {fmt_iterations(at_once[0])}, depth 8: {fmt_iterations(at_once[1])}",
            moves_at_once,
            setting,
        ),
        setting_row(
            "figure5",
            f"l{p:g}: identity init, deeper is faster",
            "iterations to the level, best rate each: depth 8 <= depth 4",
            f"depth 8: {fmt_iterations(Speed.of(identity_deep).iterations)}, "
            f"depth 4: {fmt_iterations(Speed.of(identity_shallow).iterations)}",
            faster(Speed.of(identity_deep), Speed.of(identity_shallow)),
            setting,
        ),
    ]
