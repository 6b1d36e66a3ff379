"""Every threshold of the claim criteria, as a named value with what it means.

They were fixed before the runs that judge them (see results/README.md) and are not
command-line options: a verdict must not depend on a knob turned after seeing the data.
"""

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

# MNIST: "the tutorial's test error (about 0.8 %)", judged against TUTORIAL_TEST_ERROR
# (percent) with a tolerance derived from the tutorial's own run-to-run spread (issue 32,
# 2026-12-06; a flat limit of 1.5 % before): every seed of a model at most
# TUTORIAL_TEST_ERROR + the spread (max - min) of the original model's test errors over
# the run's seeds; INCONCLUSIVE with fewer than two seeds of the original (no spread to
# derive the tolerance from).
TUTORIAL_TEST_ERROR = 0.8

# Appendix C: speed of an MNIST run = mean minibatch loss over this last fraction of it.
TAIL_FRACTION = 0.1

# Speed-up verdicts (`tfovp.speedup`), judged at the tightest level either family
# reaches: a contender is "faster" when S >= FASTER_FACTOR there (or its lower bound
# is), "an order of magnitude faster" at ORDER_OF_MAGNITUDE, and "not faster" (l2)
# when S <= NOT_FASTER_SPEEDUP = 1/NOT_FASTER_FRACTION, the threshold criterion's.
FASTER_FACTOR = 2.0

ORDER_OF_MAGNITUDE = 10.0

NOT_FASTER_SPEEDUP = 1 / NOT_FASTER_FRACTION

# Noise of a tuned speed-up (issue 32; committed 2026-12-06, before the reruns it judges):
# a tuned time T is known only to within the tuning ratio rho (the best rate lies within
# rho of the tuned one, and near it T scales at most like 1/rate), so S = T_B / T_C is
# known to within a factor rho either way. A tuned S decides "S >= theta" only if
# S / rho >= theta (PASS) or S * rho < theta (FAIL), "S <= theta" only if S * rho <= theta
# or S / rho > theta; in between the part is INCONCLUSIVE "within noise", and the row says
# so with both numbers. A bound counts on its own side the same way. On the paper's grid
# (the verdict reported beside) no band is applied: there the grid is the question.

# Noise over seeds (issue 32; committed 2026-12-06, before the seed runs it judges): a
# claim run over several initialization seeds (the data fixed, as in the paper) is
# judged per seed by its own criterion, noise rule included; over the seeds it PASSes
# when every seed PASSes and FAILs when every seed FAILs; otherwise the seeds' spread
# straddles the threshold and it is INCONCLUSIVE "within seed noise", with the count of
# each verdict. At least MIN_SEEDS seeds; each speed-up is reported as the median over
# seeds with its min-max range.
MIN_SEEDS = 5

# MNIST, the parts of the loss (issue of the loss decomposition): the same rule on the
# cross-entropy alone, and on the validation error with a window of VALIDATION_WINDOW
# evaluations; "lower test error" needs the seeds' ranges to be apart.
VALIDATION_WINDOW = 5

# MNIST: the preconditioned original "tracks" the factored model when its smoothed printed
# loss is within this factor of the factored model's at every 100th step from step 100 on.
MNIST_TRACKING_FACTOR = 2.0

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

# Theorem 2: the depth-N field is not a gradient when its circulation around Gamma_{r,R}
# is at least this many times the quadrature error; a gradient field (N = 1) has a
# circulation within GRADIENT_TOLERANCE times the quadrature error (plus round-off,
# 1e-12 of the scale ||grad L(0)|| pi R).
CIRCULATION_MARGIN = 100.0

GRADIENT_TOLERANCE = 2.0

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
