"""A regression problem of the linear experiments (PAPER Sec. 5): the preprocessed data
and the float64 optima of its l_p losses."""

import dataclasses

import numpy as np

from tfovp.datasets import load_regression
from tfovp.optimum import lp_objective, optimal_loss


@dataclasses.dataclass
class Problem:
    """Data (x (m, d), y (m, k)) with how it was made, and its optima (cached per p)."""

    x: np.ndarray
    y: np.ndarray
    dataset: str = "custom"
    preprocessing: str = "none"
    reduction: str = "mean"  # l_p loss averaged ("mean") or summed ("sum") over examples
    _solutions: dict = dataclasses.field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def load(cls, dataset, preprocessing="standardize", reduction="mean", data_dir=None):
        """A dataset of `tfovp.datasets` ("ethanol", "abalone"), preprocessed."""
        x, y = load_regression(dataset, data_dir, preprocessing)
        return cls(x, y, dataset, preprocessing, reduction)

    def solution(self, p, bias=False):
        """(L*, W* (d, k)) of the l_p problem, float64; with `bias`, of the affine fit
        (an intercept: W* is (d + 1, k), its last row the intercept)."""
        key = (p, True) if bias else p
        if key not in self._solutions:
            x = np.hstack([self.x, np.ones((len(self.x), 1))]) if bias else self.x
            self._solutions[key] = optimal_loss(x, self.y, p, self.reduction)
        return self._solutions[key]

    def optimum(self, p, bias=False):
        return self.solution(p, bias)[0]

    def optimal_kernel(self, p):
        return self.solution(p)[1]

    def reference_loss(self, p):
        """L_ref = L^1(W = 0), the l_p loss of the zero map: the common reference of the
        speed-up measures (`tfovp.speedup`), equal for every family compared."""
        return lp_objective(self.x, self.y, np.zeros((self.x.shape[1], self.y.shape[1])), p, self.reduction)

    def thresholds(self, p, levels, bias=False):
        """Losses L* + e (L_ref - L*) of the relative excess levels e (L* with an
        intercept with `bias`; L_ref, the zero map's, is the same)."""
        optimum = self.optimum(p, bias)
        return optimum + np.asarray(levels, dtype=np.float64) * (self.reference_loss(p) - optimum)

    @property
    def optima(self):
        """{p: L*} of every p solved so far (without intercept)."""
        return {p: solution[0] for p, solution in self._solutions.items() if not isinstance(p, tuple)}
