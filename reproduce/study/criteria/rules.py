"""The rules every criterion shares: the speed of a curve's best rate, "faster" between
two speeds (a curve that reaches the level beats one that does not; undecidable when
neither does or one diverged at every rate), the verdict of a row, the smoothing of a
noisy loss, and how times and speed-ups are written."""

import dataclasses

import numpy as np

from reproduce.study.claims import Claim, verdict
from tfovp import speedup as speedup_module


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


@dataclasses.dataclass(frozen=True)
class Curve:
    """One compared curve: its `Speed` and the label a claim row prints for it."""

    label: str
    speed: Speed


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


def all_hold(values):
    """Whether every part holds, in three-valued logic (True, False, None = undecidable):
    False as soon as one part is False, whatever the others; None when no part is False
    and one is undecidable; True when every part holds. A refuted part refutes the
    conjunction: an undecidable part beside it cannot rescue it."""
    values = _truth_values(values)
    if any(v is False for v in values):
        return False
    return None if any(v is None for v in values) else True


def any_holds(values):
    """The dual of `all_hold`: True as soon as one part is True; None when no part is True
    and one is undecidable; False when every part is False (and for no parts)."""
    values = _truth_values(values)
    if any(v is True for v in values):
        return True
    return None if any(v is None for v in values) else False


def _truth_values(values):
    """Each value as True, False or None (NumPy booleans included)."""
    return [None if v is None else bool(v) for v in values]


def setting_row(figure, claim, criterion, measured, holds, setting):
    return Claim(figure, claim, criterion, measured, verdict(holds), setting)


def smooth(values, window):
    """Trailing moving average over `window` steps (shorter at the start)."""
    values = np.asarray(values, dtype=float)
    sums = np.cumsum(np.insert(values, 0, 0.0))
    counts = np.minimum(np.arange(1, len(values) + 1), window)
    return (sums[1:] - sums[np.maximum(np.arange(1, len(values) + 1) - window, 0)]) / counts


def fmt_speedup(s):
    """'S = 3.2 at e = 0.01 (T_B 3,000, T_C 940)', with > / < for bounds."""
    if s is None:
        return "no level reached by either"
    times = f"(T_B {fmt_time(s.baseline_time)}, T_C {fmt_time(s.contender_time)})"
    if s.kind == speedup_module.INDEFINITE:
        return f"S unknown at e = {s.level:.3g}, both tuned rates capped (measured {s.value:.3g}) {times}"
    sign = {speedup_module.EXACT: "=", speedup_module.LOWER: ">", speedup_module.UPPER: "<"}[s.kind]
    return f"S {sign} {s.value:.3g} at e = {s.level:.3g} {times}"


def fmt_time(value):
    return "not reached" if not np.isfinite(value) else f"{int(value):,}"
