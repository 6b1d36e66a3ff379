"""The findings of the 2024 student reproduction, each as a claim on final training
losses over depths, widths, inits and seeds (`reproduce.peer_2024`)."""

import dataclasses

import numpy as np

from reproduce.study.criteria.rules import all_hold, any_holds, setting_row
from reproduce.study.criteria.thresholds import BETTER_MARGIN, SEED_SPREAD, WIDTH_TOLERANCE

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


def _lower(a, b):
    """Whether `a` is lower than `b`, the margin applied on both sides (issue 32): True
    where `a` is at least BETTER_MARGIN below `b` (every seed, for arrays), False where `b`
    is at least that far below `a` in some seed, else None (within the margin)."""
    a, b = np.atleast_1d(np.asarray(a, dtype=float)), np.atleast_1d(np.asarray(b, dtype=float))
    return all_hold(True if x else (False if y else None) for x, y in zip(_better(a, b), _better(b, a)))


def peer_linear_better(runs, init="random", setting="", figure=PEER):
    """ "The 1-layer linear regression is consistently better" (Ethanol): depth 1 below
    every deeper model (every width), in every seed."""
    linear = runs.of(init, 1)
    deeper = [(d, w) for d in runs.depths(init) if d > 1 for w in runs.widths(init, d)]
    holds = all_hold(_lower(linear, runs.of(init, d, w)) for d, w in deeper) if deeper else None
    ratios = ", ".join(f"depth {d} width {w}: {np.median(runs.of(init, d, w) / linear):.3g}" for d, w in deeper)
    return setting_row(
        figure,
        "student: the linear model is consistently better than deeper nets",
        f"final training loss (best rate of the grid) of depth 1 at least {BETTER_MARGIN:.0%} below every deeper "
        f"net's, every width, in every seed (FAIL where a deeper net is {BETTER_MARGIN:.0%} below it in a seed, "
        "INCONCLUSIVE within the margin)",
        f"deeper / linear, median over seeds: {ratios}",
        holds,
        setting,
    )


def peer_deeper_better(runs, init="random", setting="", figure=PEER):
    """ "2-layer and 3-layer networks consistently do better" (Abalone): every depth > 1,
    at its best width, below depth 1 in every seed."""
    linear = runs.of(init, 1)
    deeper = [d for d in runs.depths(init) if d > 1]
    holds = all_hold(_lower(runs.best_width(init, d), linear) for d in deeper) if deeper else None
    ratios = ", ".join(f"depth {d}: {np.median(runs.best_width(init, d) / linear):.3g}" for d in deeper)
    return setting_row(
        figure,
        "student: deeper nets are consistently better than the linear model",
        f"final training loss of every depth > 1 (its best width) at least {BETTER_MARGIN:.0%} below depth 1's, "
        f"in every seed (FAIL where depth 1 is {BETTER_MARGIN:.0%} below one in a seed, INCONCLUSIVE within the "
        "margin)",
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
    return setting_row(
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
    return setting_row(
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
    less = all_hold(_lower(spreads[i], spreads[random]) for i in (near_zero, identity))
    deeper = [(d, w) for d in runs.depths(identity) if d > 1 for w in runs.widths(identity, d)]
    faster = [_lower(np.median(runs.of(identity, d, w)), np.median(runs.of(near_zero, d, w))) for d, w in deeper]
    consistent = {
        i: all_hold(_lower(runs.best_width(i, d), runs.of(i, 1)) for d in runs.depths(i) if d > 1)
        for i in (near_zero, identity)
    }
    still_not = any_holds(consistent.values())
    ratio_text = ", ".join(
        f"depth {d} width {w}: {np.median(runs.of(identity, d, w)) / np.median(runs.of(near_zero, d, w)):.3g}"
        for d, w in deeper
    )
    return [
        setting_row(
            figure,
            "student: much less run-to-run variation with near-zero and near-identity init",
            f"the largest seed spread (max / min final loss) with near-zero init and with orthogonal init both at "
            f"least {BETTER_MARGIN:.0%} below random init's (FAIL where one is that far above it, INCONCLUSIVE within "
            "the margin)",
            ", ".join(f"{i}: {v:.3g}" for i, v in spreads.items()),
            less,
            setting,
        ),
        setting_row(
            figure,
            "student: near-identity init converges faster than near-zero for the deep nets",
            f"median final loss with orthogonal init at least {BETTER_MARGIN:.0%} below near-zero init's for every "
            "depth > 1 and width (FAIL where it is that far above in one, INCONCLUSIVE within the margin)",
            f"orthogonal / near-zero: {ratio_text}",
            all_hold(faster) if faster else None,
            setting,
        ),
        setting_row(
            figure,
            "student: with near-zero or near-identity init, deeper nets are still not clearly faster",
            f"with neither init is every depth > 1 (best width) at least {BETTER_MARGIN:.0%} below depth 1 in every "
            "seed (INCONCLUSIVE where that is within the margin for an init)",
            ", ".join(f"{i}: deeper consistently better {v}" for i, v in consistent.items()),
            None if still_not is None else not still_not,
            setting,
        ),
    ]
