"""Deprecated name of `tfovp.sweep` (kept so that older scripts still import)."""

import warnings

from tfovp.sweep import SweepResult, SweepSpec, sweep

warnings.warn("`tfovp.train` is now `tfovp.sweep`; import `sweep` from there.", DeprecationWarning, stacklevel=2)

__all__ = ["SweepResult", "SweepSpec", "sweep"]
