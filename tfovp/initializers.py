"""Initializers for products of factors (PAPER Sec. 5 and Eq. 7).

A `FactorInitializer` draws all factors of a product at once through
`factors(shapes, dtype)`, because balancedness (Eq. 7) couples them. Shapes are in
Keras orientation: factor j maps width n_j to n_{j+1}, so the end-to-end kernel is
factor_0 @ factor_1 @ ... @ factor_{N-1} (the transpose of the paper's W_N ... W_1).

With an integer `seed`, factor j is drawn from NumPy's generator seeded with
(seed, j): the same numbers on every call and machine, different for every factor.
With `seed=None` the seed is drawn from NumPy's global generator, which
`keras.utils.set_random_seed` seeds.
"""

import keras
import numpy as np

from tfovp._factors import product
from tfovp.checks import check_float_dtype, check_real

PACKAGE = "tfovp"


def _check_seed(seed):
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
        raise ValueError(f"`seed` must be an integer or None. Received: seed={seed!r}")
    return None if seed is None else int(seed)


def _generator(seed, index):
    if seed is None:
        seed = int(np.random.randint(0, 2**31 - 1))
    return np.random.default_rng([seed, index])


def derived_seed(seed, index):
    """A 31-bit seed for item `index` of a family seeded with `seed` (None stays None)."""
    if seed is None:
        return None
    return int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1)[0] >> 1)


def rectangular_eye(shape):
    """Ones on the diagonal i == j of a (possibly non-square) matrix."""
    return np.eye(shape[0], shape[1])


class FactorInitializer(keras.initializers.Initializer):
    """Base class: initializes every factor of a product in one call."""

    def factors(self, shapes, dtype=None):
        """Return one array per shape in `shapes` (Keras orientation, in order)."""
        raise NotImplementedError

    def __call__(self, shape, dtype=None):
        return self.factors([tuple(shape)], dtype)[0]


def _to_dtype(arrays, dtype):
    dtype = check_float_dtype("dtype", keras.backend.standardize_dtype(dtype or keras.backend.floatx()))
    return [keras.ops.convert_to_tensor(np.asarray(a), dtype=dtype) for a in arrays]


@keras.saving.register_keras_serializable(package=PACKAGE)
class NearZero(FactorInitializer):
    """The paper's near-zero initialization: every entry i.i.d. N(0, stddev^2).

    Args:
        stddev: standard deviation (paper: 0.01).
        seed: int for reproducible draws, or None (see module docstring).
    """

    def __init__(self, stddev=0.01, *, seed):
        self.stddev = check_real("stddev", stddev, minimum=0.0)
        self.seed = _check_seed(seed)

    def draw(self, shapes):
        """The factors as float64 NumPy arrays."""
        return [_generator(self.seed, j).normal(0.0, self.stddev, size=tuple(shape)) for j, shape in enumerate(shapes)]

    def factors(self, shapes, dtype=None):
        return _to_dtype(self.draw(shapes), dtype)

    def get_config(self):
        return {"stddev": self.stddev, "seed": self.seed}


@keras.saving.register_keras_serializable(package=PACKAGE)
class Identity(NearZero):
    """Identity initialization (PAPER Sec. 5, Fig. 5 left): N(0, stddev^2) entries plus 1
    on the diagonal i == j of every factor, square or not."""

    def draw(self, shapes):
        return [w + rectangular_eye(w.shape) for w in super().draw(shapes)]


def balanced_factors(end_to_end, hidden_widths, atol=1e-12):
    """Factors of `end_to_end` (Keras orientation, d x k) that satisfy Eq. 7 exactly.

    With the SVD end_to_end = U diag(s) V^T keep q = min(d, k, widths) components:
    factor_0 = U_q diag(s)^{1/N}, middle factors diag(s)^{1/N}, last diag(s)^{1/N} V_q^T,
    each zero-padded to its shape. Then factor_j factor_j^T = factor_{j-1}^T factor_{j-1}
    (Eq. 7 in Keras orientation) and the product is end_to_end. Float64 NumPy.
    """
    target = np.asarray(end_to_end, dtype=np.float64)
    if target.ndim != 2:
        raise ValueError(f"`end_to_end` must be a 2-D matrix. Received: end_to_end.shape={target.shape}")
    depth = len(hidden_widths) + 1
    if depth == 1:
        return [target.copy()]
    u, s, vh = np.linalg.svd(target, full_matrices=False)
    keep = min([len(s)] + list(hidden_widths))
    if keep < len(s) and s[keep] > atol * max(s[0], 1.0):
        raise ValueError(
            f"`hidden_widths` must be at least rank(end_to_end) = {int(np.sum(s > atol * s[0]))} "
            f"for an exact factorization. Received: hidden_widths={list(hidden_widths)}"
        )
    root = s[:keep] ** (1.0 / depth)
    dims = [target.shape[0]] + list(hidden_widths) + [target.shape[1]]
    factors = []
    for j in range(depth):
        factor = np.zeros((dims[j], dims[j + 1]))
        if j == 0:
            factor[:, :keep] = u[:, :keep] * root
        elif j == depth - 1:
            factor[:keep, :] = root[:, None] * vh[:keep]
        else:
            factor[:keep, :keep] = np.diag(root)
        factors.append(factor)
    return factors


@keras.saving.register_keras_serializable(package=PACKAGE)
class Balanced(FactorInitializer):
    """Factors satisfying the balancedness condition (Eq. 7) exactly.

    Eq. 7 reads W_{j+1}^T W_{j+1} = W_j W_j^T; in Keras orientation
    factor_j factor_j^T = factor_{j-1}^T factor_{j-1}.

    Args:
        end_to_end: target end-to-end kernel (d x k, Keras orientation), or None for a
            random one: the product of near-zero factors N(0, stddev^2), i.e. the W_e(0)
            of the paper's initialization, rebalanced.
        stddev: entry scale of the random factors when `end_to_end` is None.
        from_linear: with `end_to_end` None, draw the target as the linear model's
            near-zero kernel (one d x k draw of N(0, stddev^2), the W(0) of depth 1 with
            this seed) instead of a product of near-zero factors.
        seed: int or None.
    """

    def __init__(self, end_to_end=None, stddev=0.01, *, seed, from_linear=False):
        self.end_to_end = None if end_to_end is None else np.asarray(end_to_end, np.float64)
        if self.end_to_end is not None and self.end_to_end.ndim != 2:
            raise ValueError(f"`end_to_end` must be a 2-D matrix. Received: end_to_end.shape={self.end_to_end.shape}")
        self.stddev = check_real("stddev", stddev, minimum=0.0)
        self.seed = _check_seed(seed)
        self.from_linear = bool(from_linear)

    def draw(self, shapes):
        shapes = [tuple(s) for s in shapes]
        outer = (shapes[0][0], shapes[-1][1])
        if self.end_to_end is None:
            drawn = NearZero(self.stddev, seed=self.seed).draw([outer] if self.from_linear else shapes)
            target = product(drawn)
        elif self.end_to_end.shape != outer:
            raise ValueError(f"`end_to_end` has shape {self.end_to_end.shape} but the factors need {outer}.")
        else:
            target = self.end_to_end
        return balanced_factors(target, [s[1] for s in shapes[:-1]])

    def factors(self, shapes, dtype=None):
        return _to_dtype(self.draw(shapes), dtype)

    def get_config(self):
        target = None if self.end_to_end is None else self.end_to_end.tolist()
        return {"end_to_end": target, "stddev": self.stddev, "seed": self.seed, "from_linear": self.from_linear}


ALIASES = {"near_zero": NearZero, "identity": Identity, "balanced": Balanced}


def get(identifier):
    """Resolve an initializer: a tfovp alias ("near_zero", "identity", "balanced",
    unseeded), an instance, a config dict, or anything `keras.initializers.get` takes."""
    if isinstance(identifier, str) and identifier in ALIASES:
        return ALIASES[identifier](seed=None)
    return keras.initializers.get(identifier)


def with_seed(initializer, seed):
    """A copy of `initializer` whose seed is `seed` (keras or tfovp initializer)."""
    config = initializer.get_config()
    if "seed" not in config:
        return initializer
    config["seed"] = seed
    return initializer.__class__.from_config(config)


def draw_factors(initializer, shapes, dtype=None):
    """All factors for `shapes`: jointly for a `FactorInitializer`, else one call per
    factor (a seeded Keras initializer gets a derived seed per factor, so equal shapes
    do not receive equal draws)."""
    initializer = get(initializer)
    if isinstance(initializer, FactorInitializer):
        return initializer.factors(shapes, dtype)
    seed = initializer.get_config().get("seed")
    out = []
    for j, shape in enumerate(shapes):
        each = initializer if seed is None or len(shapes) == 1 else with_seed(initializer, derived_seed(seed, j))
        out.append(each(tuple(shape), dtype=dtype))
    return out
