"""Every claim criterion of the reproduction, with its thresholds as named values.

`thresholds` holds every threshold; `rules` what the criteria share; one module per
group of claims: `linear` (Figures 2-5 left), `mnist` (Figure 5 right, Appendix C),
`speedups` (the tuned speed-up verdicts), `theory` (Theorem 2, Section 7), `peer` (the
2024 student reproduction). Everything is importable from this package.

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

from reproduce.study.criteria.linear import (  # noqa: F401
    Tracking,
    figure2_depth,
    figure2_tracking,
    figure2_width,
    figure3,
    figure4,
    figure5,
)
from reproduce.study.criteria.mnist import (  # noqa: F401
    APPENDIX_C,
    APPENDIX_C_QUANTITIES,
    MnistOutcome,
    appendix_c,
    appendix_c_stds,
    faster_series,
    mnist,
    mnist_tracking,
    tail_loss,
)
from reproduce.study.criteria.peer import (  # noqa: F401
    PEER,
    PeerRuns,
    peer_deeper_better,
    peer_inits,
    peer_linear_better,
    peer_stochastic,
    peer_width_matters,
)
from reproduce.study.criteria.rules import (  # noqa: F401
    Curve,
    Speed,
    all_hold,
    any_holds,
    faster,
    fmt_speedup,
    fmt_time,
    setting_row,
    smooth,
)
from reproduce.study.criteria.speedups import (  # noqa: F401
    SPEED_UP,
    Comparison,
    compare,
    speedup_claim,
    speedup_holds,
    speedup_not_faster,
)
from reproduce.study.criteria.theory import (  # noqa: F401
    appendix_b,
    theorem2,
)
from reproduce.study.criteria.thresholds import (  # noqa: F401
    AT_ONCE_FRACTION,
    BETTER_MARGIN,
    CHECKPOINT_FRACTIONS,
    CIRCULATION_MARGIN,
    FASTER_FACTOR,
    GRADIENT_TOLERANCE,
    LATE_FRACTION,
    MNIST_TRACKING_FACTOR,
    MOVED_LEVEL,
    MUCH_FASTER_FACTOR,
    NOT_FASTER_FRACTION,
    NOT_FASTER_SPEEDUP,
    ORDER_OF_MAGNITUDE,
    REACH_FRACTION,
    SEED_SPREAD,
    SMOOTHING_WINDOW,
    STD_GRID_LR,
    STD_IDENTICAL_FACTOR,
    TAIL_FRACTION,
    TRACKING_TOLERANCE,
    TUTORIAL_TEST_ERROR,
    VALIDATION_WINDOW,
    WIDTH_TOLERANCE,
)
