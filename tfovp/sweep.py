"""Full-batch sweeps over learning rates (and seeds) in one XLA-compiled loop.

`sweep` trains C = len(seeds) * len(learning_rates) copies of one model at once: every
weight carries a leading copy axis, and a `tf.while_loop` inside a jit-compiled
`tf.function` runs the steps. Per step and copy it evaluates the full-batch l_p loss
L^1(W_e) of the end-to-end kernel W_e and its gradient G_e (written out below, checked
against autodiff and finite differences in the tests), then

* update="gd": gradient descent on the factors, Eq. 4,
  W_j <- (1 - eta*lambda) W_j - eta dL/dW_j, with dL/dW_j from G_e by autodiff
  through the product W_e = W_1 ... W_N (identical to backpropagating the layered
  net, since the loss depends on the factors only through W_e);
* update="end_to_end": the end-to-end rule, Eq. 10, on a single kernel;
* update=<keras optimizer or name>: that optimizer on the factors. The optimizer runs
  with learning rate 1 on a scratch variable and the result is scaled by each copy's
  learning rate: exact for SGD (with momentum), Adam, AdaGrad, AdaDelta, RMSprop, whose
  updates are linear in the learning rate for a given gradient history.

XLA's CPU SVD returns singular vectors only to ~1e-6, even in float64, so the one
case that needs an SVD (update="end_to_end" with more than one output and input) runs
as a TensorFlow graph without XLA; the closed form of Claim 2 (one output, as in all of
the paper's linear experiments) stays compiled.

With `bias=True` every layer has a bias, as `torch.nn.Linear` has (not the paper's
setting): layer j maps h to h K_j + c_j, and the net is the affine map x W_e + b_e with
[W_e; b_e] = K~_0 K~_1 ... K~_{N-1}, K~_j = [[K_j, 0], [c_j, 1]] (the last without its
column of the constant): the loss is the l_p loss of [W_e; b_e] on [x, 1], so L* is the
optimum with an intercept. The biases start at `bias_std` x N(0, 1) (0: zeros).

Copies with the same seed share their initial weights, so a net and the rule started
with the same seed, depth, widths and initializer share W_e(0). A copy whose loss is not
finite or exceeds `divergence_factor` times its initial loss is marked diverged and
frozen; its later losses are NaN.
"""

import dataclasses
import os
import time
import typing

import keras
import numpy as np
import tensorflow as tf

from tfovp import initializers
from tfovp._factors import factor_shapes, hidden_widths_list, product
from tfovp.checks import check_choice, check_int, check_real
from tfovp.diagnostics import gram_residuals
from tfovp.end_to_end import precondition
from tfovp.losses import LpLoss, lp_terms
from tfovp.progress import Progress

UPDATES = ("gd", "end_to_end")
REDUCTIONS = ("mean", "sum")
# Optimizer settings that would couple the copies or that the scratch-variable trick
# would silently ignore.
_UNSUPPORTED_OPTIMIZER_SETTINGS = ("clipnorm", "global_clipnorm", "weight_decay", "use_ema")


@dataclasses.dataclass
class SweepResult:
    """What `sweep` returns. Copy c has `learning_rates[c]` and `seeds[c]`.

    Attributes:
        learning_rates, seeds: (C,) per copy (seed-major: all rates of the first seed first).
        steps: (R,) recorded step numbers (step t = loss before the (t+1)-th update).
        losses: (R, C) full-batch loss; NaN from a copy's divergence on.
        diverged: (C,) bool.  diverged_at: (C,) step of divergence, -1 if none.
        final_weights: list of (C, ...) arrays: the factors (or [W_e] for the rule).
        end_to_end: (R, C, d, k) recorded W_e (Keras orientation) or None.
        end_to_end_norm: (R, C) recorded ||W_e||_F.
        balancedness: (R, C, N-1) recorded ||W_{j+1}^T W_{j+1} - W_j W_j^T||_F (Eq. 7) or None.
        balancedness_scale: (R, C, N-1) the larger of ||W_{j+1}^T W_{j+1}||_F and
            ||W_j W_j^T||_F (about ||W_j||_F^2), the scale of each residual, or None.
        window_max: (R, C) largest loss over every step from recorded step r to the next
            (to the end for the last), +inf from divergence on; or None.
        last_above: (C, J) last step whose loss exceeded `thresholds[j]` (-1: never;
            steps after divergence do not count); or None.
        elapsed: seconds spent, compilation included.
        seconds_per_step: steady-state time of one step of all copies, measured on the
            chunks after the first (which includes XLA compilation); NaN if one chunk.
        config: the arguments, for provenance.
    """

    learning_rates: np.ndarray
    seeds: np.ndarray
    steps: np.ndarray
    losses: np.ndarray
    diverged: np.ndarray
    diverged_at: np.ndarray
    final_weights: list
    end_to_end: np.ndarray | None
    end_to_end_norm: np.ndarray
    balancedness: np.ndarray | None
    balancedness_scale: np.ndarray | None
    window_max: np.ndarray | None
    last_above: np.ndarray | None
    elapsed: float
    seconds_per_step: float
    config: dict

    def relative_balancedness(self):
        """(R, C, N-1) each Eq. 7 residual over its scale (0 where both Gram matrices are
        0), or None: comparable across initialization scales."""
        if self.balancedness is None:
            return None
        scale = self.balancedness_scale
        return np.where(scale > 0, self.balancedness / np.where(scale > 0, scale, 1.0), 0.0)

    def final_end_to_end(self):
        """(C, d, k) end-to-end kernels after training ([W_e; b_e], (C, d + 1, k), with
        biases)."""
        if self.config.get("bias"):
            depth = len(self.final_weights) // 2
            return affine_product([tf.constant(w) for w in self.final_weights], depth).numpy()
        return product(self.final_weights)


@dataclasses.dataclass(frozen=True, eq=False)
class SweepSpec:
    """Everything a sweep trains, checked: the loss, the model, the update rule, the
    copies and what is recorded (the arguments of `sweep` less the data)."""

    p: float  # l_p loss
    reduction: str  # "mean" or "sum" over examples
    depth: int  # N
    hidden_widths: tuple  # N - 1 widths
    update: str  # "gd", "end_to_end" or "optimizer"
    optimizer: object  # the Keras optimizer of update="optimizer" (learning rate 1), else None
    initializer: object  # a Keras or tfovp initializer
    seeds: tuple  # one initialization per seed
    grid: np.ndarray  # (rates,) learning rates, shared by every seed
    steps: int  # updates
    weight_decay: float  # lambda of Eqs. 4 and 10
    divergence_factor: float | None  # loss above this multiple of L(0) = diverged
    record_steps: np.ndarray  # steps whose values are kept
    record_end_to_end: bool
    record_balancedness: bool
    record_window_max: bool  # keep the largest loss of every interval between recorded steps
    thresholds: np.ndarray  # (J,) losses whose last exceedance step is tracked, maybe empty
    dtype: str  # "float32" or "float64"
    jit_compile: bool
    bias: bool = False  # a bias on every layer (the end-to-end map is affine)
    bias_std: float = 0.0  # the biases' initial N(0, bias_std^2) draw (0: zeros)

    @property
    def learning_rates(self):
        """(C,) per copy, seed-major."""
        return np.tile(self.grid, len(self.seeds))

    @property
    def copy_seeds(self):
        return np.repeat(np.asarray(self.seeds), self.grid.size)

    @property
    def copies(self):
        return self.grid.size * len(self.seeds)

    def needs_svd(self, d, k):
        return self.update == "end_to_end" and self.depth > 1 and min(d, k) > 1

    def config(self):
        """The arguments as JSON-ready values, for provenance."""
        return {
            "steps": self.steps,
            "depth": self.depth,
            "hidden_widths": list(self.hidden_widths),
            "update": self.update if self.optimizer is None else keras.optimizers.serialize(self.optimizer),
            "initializer": keras.initializers.serialize(self.initializer),
            "seeds": list(self.seeds),
            "learning_rates": self.grid.tolist(),
            "loss_p": self.p,
            "reduction": self.reduction,
            "weight_decay": self.weight_decay,
            "divergence_factor": self.divergence_factor,
            "dtype": self.dtype,
            "bias": self.bias,
            "bias_std": self.bias_std,
        }


def _as_2d(name, array, dtype):
    """`array` as a 2-D `dtype` array with at least one row and finite values in `dtype`."""
    array = np.asarray(array, dtype=np.float64)
    if array.ndim == 1 and name == "y":
        array = array[:, None]
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"`{name}` must be 2-D with at least one row and column. Received: {name}.shape={array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"`{name}` contains NaN or infinite values.")
    with np.errstate(over="ignore"):
        converted = array.astype(dtype)
    if not np.all(np.isfinite(converted)):
        raise ValueError(
            f"`{name}` has values that overflow {dtype} (largest |{name}| = {np.abs(array).max():.3g}); "
            "rescale the data or use dtype='float64'."
        )
    return converted


def _loss_power(loss):
    if isinstance(loss, LpLoss):
        return loss.p
    return check_real("loss", loss, minimum=1.0)


def _resolve_update(update):
    if isinstance(update, str) and update in UPDATES:
        return update, None
    try:
        optimizer = keras.optimizers.get(update)
    except (ValueError, TypeError) as error:
        raise ValueError(
            f"`update` must be one of {list(UPDATES)}, a keras optimizer or its name. Received: update={update!r}"
        ) from error
    config = optimizer.get_config()
    for key in _UNSUPPORTED_OPTIMIZER_SETTINGS:
        if config.get(key):
            raise ValueError(
                f"`update` optimizer setting {key}={config[key]!r} is not supported by the "
                "sweep (it would couple the copies or be ignored); use `weight_decay=` of "
                "`sweep` for decay."
            )
    config["learning_rate"] = 1.0
    return "optimizer", optimizer.__class__.from_config(config)


def _check_record_steps(record_steps, steps):
    if record_steps is None:
        return np.arange(steps + 1)
    record = np.unique(np.asarray(record_steps, dtype=np.int64))
    if record.size == 0 or record[0] < 0 or record[-1] > steps:
        raise ValueError(
            f"`record_steps` must be non-empty and within [0, steps={steps}]. Received: record_steps={record_steps!r}"
        )
    return record


def _check_thresholds(thresholds):
    values = np.asarray([] if thresholds is None else thresholds, dtype=np.float64).ravel()
    if not np.all(np.isfinite(values)):
        raise ValueError(f"`thresholds` must be finite losses. Received: thresholds={list(values)!r}")
    return values


def _check_grid(learning_rates):
    rates = np.asarray(list(learning_rates), dtype=np.float64).ravel()
    if rates.size == 0 or not np.all(np.isfinite(rates)) or np.any(rates <= 0):
        raise ValueError(
            "`learning_rates` must be a non-empty list of finite values > 0. "
            f"Received: learning_rates={list(learning_rates)!r}"
        )
    return rates


def available_memory():
    """Bytes of memory available to a new allocation (Linux MemAvailable), or None."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _check_memory(spec, m, d, k):
    """Raise MemoryError naming the sizes when the sweep cannot fit in memory."""
    item = np.dtype(spec.dtype).itemsize
    copies, rows = spec.copies, spec.record_steps.size + 1
    sizes = {
        "data": (d * d + k * d) if spec.p == 2 else (2 * m * d + k * m),
        "per-step residuals (copies x outputs x rows, 4 buffers)": 0 if spec.p == 2 else 4 * copies * k * m,
        "weights (copies x parameters, 4 buffers)": 4
        * copies
        * sum(a * b for a, b in factor_shapes(d, k, spec.hidden_widths)),
        "records (recorded steps x copies)": rows
        * copies
        * (
            2
            + spec.record_window_max
            + (d * k if spec.record_end_to_end else 0)
            + (2 * spec.depth if spec.record_balancedness else 0)
        ),
        "tracked thresholds": copies * spec.thresholds.size,
    }
    needed = item * sum(sizes.values())
    available = available_memory()
    if available is not None and needed > available:
        parts = ", ".join(f"{name}: {item * n / 2**30:.2f} GiB" for name, n in sizes.items() if n)
        raise MemoryError(
            f"sweep needs about {needed / 2**30:.2f} GiB ({parts}; m={m} rows, d={d}, k={k}, {copies} copies, "
            f"{spec.dtype}) but only {available / 2**30:.2f} GiB are available: use fewer copies (learning rates "
            "x seeds), fewer record_steps or a smaller dataset."
        )


def _initial_factors(spec, d, k):
    """(C, ...) float64 initial weights: the factors, or [W_e(0)] for the rule; copies with
    the same seed share them."""
    shapes = factor_shapes(d, k, spec.hidden_widths)
    per_seed = [
        [
            np.asarray(f, np.float64)
            for f in initializers.draw_factors(initializers.with_seed(spec.initializer, seed), shapes, "float64")
        ]
        for seed in spec.seeds
    ]
    if spec.update == "end_to_end":
        per_seed = [[product(fs)] for fs in per_seed]
    if spec.bias:  # after the factors, one bias per layer, drawn per seed after them
        for seed, fs in zip(spec.seeds, per_seed):
            draws = np.random.default_rng([seed, len(shapes)])
            fs += [spec.bias_std * draws.standard_normal(shape[1]) for shape in shapes]
    return [np.repeat(np.stack([fs[j] for fs in per_seed]), spec.grid.size, axis=0) for j in range(len(per_seed[0]))]


def affine_product(weights, depth):
    """[W_e; b_e] (C, d + 1, k) of factors `weights[:depth]` (C, n_j, n_{j+1}) and biases
    `weights[depth:]` (C, n_{j+1}): the product of the augmented factors K~_j."""
    factors, biases = weights[:depth], weights[depth:]
    out = None
    for j, (kernel, bias) in enumerate(zip(factors, biases)):
        block = tf.concat([kernel, bias[:, None, :]], axis=1)  # (C, n_j + 1, n_{j+1}): [[K_j], [c_j]]
        if j < depth - 1:  # the constant 1 carried to the next layer
            ones = tf.concat([tf.zeros_like(kernel[:, :, :1]), tf.ones_like(bias[:, None, :1])], axis=1)
            block = tf.concat([block, ones], axis=2)
        out = block if out is None else tf.matmul(out, block)
    return out


class _LpObjective:
    """The full-batch l_p loss L^1(W_e) of every copy's end-to-end kernel and its gradient
    G_e = dL^1/dW_e (PAPER Sec. 1). For p = 2 through the Gram matrix: L = 1/2 tr(W^T H W)
    - tr(W^T b) + c/2 with H = s X^T X, b = s X^T Y, c = s ||Y||^2 (s = 1/m for a mean,
    1 for a sum); otherwise from the residuals R = W^T X^T - Y^T: L = s/p sum |R|^p,
    G_e = s X^T (|R|^{p-1} sign R)^T (`tfovp.losses.lp_terms`)."""

    def __init__(self, p, reduction, x, y, dtype):
        self.p = p
        self.scale = 1.0 / x.shape[0] if reduction == "mean" else 1.0
        self.use_gram = p == 2
        if self.use_gram:
            self.gram = tf.constant(self.scale * (x.T @ x), dtype)
            self.cross = tf.constant(self.scale * (y.T @ x), dtype)  # (k, d)
            self.offset = tf.constant(0.5 * self.scale * np.sum(y * y), dtype)
        else:
            self.x = tf.constant(x, dtype)
            self.xt = tf.constant(np.ascontiguousarray(x.T), dtype)
            self.yt = tf.constant(np.ascontiguousarray(y.T), dtype)

    def __call__(self, end_to_end):
        """Per-copy L^1(W_e) (C,) and G_e (C, d, k), from W_e (C, d, k)."""
        kernel_t = tf.linalg.matrix_transpose(end_to_end)  # (C, k, d)
        if self.use_gram:
            times_gram = tf.einsum("ckd,de->cke", kernel_t, self.gram)
            loss = (
                0.5 * tf.reduce_sum(kernel_t * times_gram, axis=[1, 2])
                - tf.reduce_sum(kernel_t * self.cross, axis=[1, 2])
                + self.offset
            )
            grad_t = times_gram - self.cross
        else:
            copies, k, d = tf.unstack(tf.shape(kernel_t))
            rows = tf.reshape(kernel_t, (-1, d))
            residual = tf.reshape(tf.matmul(rows, self.xt), (copies, k, -1)) - self.yt
            loss_terms, slope = lp_terms(residual, self.p)
            loss = self.scale / self.p * tf.reduce_sum(loss_terms, axis=[1, 2])
            grad_rows = self.scale * tf.matmul(tf.reshape(slope, (copies * k, -1)), self.x)
            grad_t = tf.reshape(grad_rows, (copies, k, d))
        return loss, tf.linalg.matrix_transpose(grad_t)


class _UpdateRule:
    """One step of every copy, each with its own learning rate eta_c and the weight decay
    lambda: `new_weights(weights, grad_e, factor_gradients)` takes the current weights,
    G_e and a callable returning dL/dW_j of every weight (autodiff through W_e)."""

    def __init__(self, spec, dtype):
        self.spec = spec
        self.lr = tf.constant(spec.learning_rates.reshape(-1, 1, 1), dtype)

    def rates(self, weights):
        """eta_c shaped to broadcast against each weight (any rank: biases too)."""
        return [tf.reshape(self.lr, [-1] + [1] * (len(w.shape) - 1)) for w in weights]

    def new_weights(self, weights, grad_e, factor_gradients):
        raise NotImplementedError


class _GradientDescent(_UpdateRule):
    """Eq. 4: W_j <- (1 - eta lambda) W_j - eta dL/dW_j."""

    def new_weights(self, weights, grad_e, factor_gradients):
        decay = self.spec.weight_decay
        return [(1.0 - r * decay) * w - r * g for w, g, r in zip(weights, factor_gradients(), self.rates(weights))]


class _EndToEndRule(_UpdateRule):
    """Eq. 10 on the single kernel W_e: W_e <- (1 - eta lambda N) W_e - eta P_{W_e}(G_e)."""

    def new_weights(self, weights, grad_e, factor_gradients):
        depth = self.spec.depth
        direction = precondition(weights[0], grad_e, depth)
        return [(1.0 - self.lr * (self.spec.weight_decay * depth)) * weights[0] - self.lr * direction]


class _OptimizerRule(_UpdateRule):
    """A Keras optimizer built with learning rate 1 on zeroed scratch variables, its step
    scaled by each copy's eta (see the module docstring), then the decay of Eq. 4."""

    def __init__(self, spec, dtype, weights):
        super().__init__(spec, dtype)
        self.scratch = [tf.Variable(tf.zeros_like(w), name=f"d{j}") for j, w in enumerate(weights)]
        spec.optimizer.build(self.scratch)

    def new_weights(self, weights, grad_e, factor_gradients):
        for d in self.scratch:
            d.assign(tf.zeros_like(d))
        self.spec.optimizer.apply(factor_gradients(), self.scratch)
        decay = self.spec.weight_decay
        return [(1.0 - r * decay) * w + r * d for w, d, r in zip(weights, self.scratch, self.rates(weights))]


class _Records(typing.NamedTuple):
    """The recording buffers, one row per recorded step plus a spare last row that absorbs
    writes between records; the loop carries them as its state."""

    losses: object  # (R + 1, C) full-batch loss, NaN once diverged
    norms: object  # (R + 1, C) ||W_e||_F
    trajectory: object  # (R + 1, C, d, k) W_e, or a dummy (1, ...) row
    residuals: object  # (R + 1, C, N - 1, 2) Eq. 7 residuals and scales, or a dummy row
    pointer: object  # () the next recorded step's row
    window_max: object  # (R + 1, C) largest loss of each interval between records, or a dummy row
    last_above: object  # (C, J) last step whose loss exceeded each threshold


class _Recorder:
    """Keeps `_Records` at the spec's recorded steps, and every step the window maxima and
    the last step above each threshold."""

    def __init__(self, spec, copies, d, k, factor_count, dtype):
        self.spec = spec
        self.factor_count = factor_count
        self.with_balancedness = spec.record_balancedness and factor_count > 1
        self.record_at = tf.constant(np.append(spec.record_steps, -1), tf.int64)
        self.rows = len(spec.record_steps)
        rows = self.rows + 1

        def nan(shape):
            return tf.fill(shape, tf.constant(np.nan, dtype))

        self.buffers = _Records(
            losses=tf.Variable(nan((rows, copies))),
            norms=tf.Variable(nan((rows, copies))),
            trajectory=tf.Variable(tf.zeros((rows if spec.record_end_to_end else 1, copies, d, k), dtype)),
            residuals=tf.Variable(
                tf.zeros((rows if self.with_balancedness else 1, copies, max(factor_count - 1, 1), 2), dtype)
            ),
            pointer=tf.Variable(tf.constant(0, tf.int64)),
            window_max=tf.Variable(
                tf.fill((rows if spec.record_window_max else 1, copies), tf.constant(-np.inf, dtype))
            ),
            last_above=tf.Variable(-tf.ones((copies, spec.thresholds.size), tf.int64)),
        )
        self.thresholds = tf.constant(np.reshape(spec.thresholds, (1, -1)), dtype)

    def read(self):
        return _Records(*(buffer.read_value() for buffer in self.buffers))

    def store(self, records):
        for buffer, value in zip(self.buffers, records):
            buffer.assign(value)

    def record(self, t, loss, alive, end_to_end, weights, records):
        """`records` after step t."""
        recording = tf.equal(t, self.record_at[records.pointer])
        last_row = tf.cast(tf.shape(records.losses)[0] - 1, tf.int64)
        row = tf.where(recording, records.pointer, last_row)

        def write(buffer, value):
            return tf.tensor_scatter_nd_update(buffer, [[row]], [value])

        nan = tf.fill(tf.shape(loss), tf.constant(np.nan, loss.dtype))
        changes = {
            "losses": write(records.losses, tf.where(alive, loss, nan)),
            "norms": write(records.norms, tf.where(alive, tf.norm(end_to_end, axis=[-2, -1]), nan)),
            "pointer": records.pointer + tf.cast(recording, tf.int64),
        }
        if self.spec.record_end_to_end:
            changes["trajectory"] = write(records.trajectory, end_to_end)
        if self.with_balancedness:
            changes["residuals"] = write(records.residuals, gram_residuals(weights[: self.factor_count]))
        if self.spec.record_window_max:  # steps before the first record go to the spare last row
            pointer = changes["pointer"]
            window = tf.where(pointer > 0, pointer - 1, last_row)
            value = tf.where(alive, loss, tf.fill(tf.shape(loss), tf.constant(np.inf, loss.dtype)))
            changes["window_max"] = tf.tensor_scatter_nd_max(records.window_max, [[window]], [value])
        if self.spec.thresholds.size:
            above = (loss[:, None] > self.thresholds) & alive[:, None]
            changes["last_above"] = tf.where(above, t, records.last_above)
        return records._replace(**changes)

    def _window_max(self):
        """(R, C) window maxima; a window the loop never reached (it stops once every copy
        has diverged) holds +inf, as every window of a copy after its divergence does."""
        values = self.buffers.window_max.numpy()[: self.rows].astype(np.float64)
        return np.where(np.isneginf(values), np.inf, values)

    def results(self):
        """The `SweepResult` fields of the records."""
        spec, rows, buffers = self.spec, self.rows, self.buffers
        residuals = buffers.residuals.numpy()[:rows] if self.with_balancedness else None
        return {
            "losses": buffers.losses.numpy()[:rows].astype(np.float64),
            "end_to_end": buffers.trajectory.numpy()[:rows] if spec.record_end_to_end else None,
            "end_to_end_norm": buffers.norms.numpy()[:rows].astype(np.float64),
            "balancedness": None if residuals is None else residuals[..., 0],
            "balancedness_scale": None if residuals is None else residuals[..., 1],
            "window_max": self._window_max() if spec.record_window_max else None,
            "last_above": buffers.last_above.numpy() if spec.thresholds.size else None,
        }


class _Divergence:
    """Which copies are still training: a copy whose loss is not finite or exceeds
    `divergence_factor` x |L(0)| is marked diverged at that step and frozen."""

    def __init__(self, factor, copies, dtype):
        self.factor = factor
        self.alive = tf.Variable(tf.ones(copies, tf.bool))
        self.diverged_at = tf.Variable(-tf.ones(copies, tf.int64))
        self.initial_loss = tf.Variable(tf.zeros(copies, dtype))

    def check(self, t, loss):
        """Mark the copies that diverge at step t; returns the alive mask."""
        initial = tf.where(tf.equal(t, 0), loss, self.initial_loss)
        self.initial_loss.assign(initial)
        ok = tf.math.is_finite(loss)
        if self.factor is not None:
            ok = ok & (loss <= self.factor * tf.abs(initial))
        alive_before = self.alive.read_value()
        alive = alive_before & ok
        self.diverged_at.assign(tf.where(alive_before & ~alive, t, self.diverged_at))
        self.alive.assign(alive)
        return alive


class _SweepProgram:
    """One sweep's compiled step loop, composed of the objective, the update rule, the
    divergence check and the recorder (internal)."""

    def __init__(self, spec, x, y, factors):
        self.spec = spec
        dtype = spec.dtype
        if spec.bias:  # the affine map acts on [x, 1]
            x = np.hstack([x, np.ones((x.shape[0], 1), dtype=x.dtype)])
        self.factor_count = len(factors) // 2 if spec.bias else len(factors)
        copies = factors[0].shape[0]
        self.objective = _LpObjective(spec.p, spec.reduction, x, y, dtype)
        self.weights = [tf.Variable(f, dtype=dtype, name=f"w{j}") for j, f in enumerate(factors)]
        if spec.optimizer is not None:
            self.rule = _OptimizerRule(spec, dtype, self.weights)
        else:
            self.rule = (_EndToEndRule if spec.update == "end_to_end" else _GradientDescent)(spec, dtype)
        self.divergence = _Divergence(spec.divergence_factor, copies, dtype)
        d, k = x.shape[1], y.shape[1]
        self.recorder = _Recorder(spec, copies, d, k, self.factor_count, dtype)
        self.run = tf.function(self._run, jit_compile=spec.jit_compile and not spec.needs_svd(d, k))

    def end_to_end(self, weights):
        """W_e (C, d, k), or [W_e; b_e] (C, d + 1, k) with biases."""
        if self.spec.bias:
            return affine_product(weights, self.factor_count)
        return product(weights, right_to_left=True)

    def _run(self, start, stop, last):
        def body(t, records):
            weights = [w.read_value() for w in self.weights]
            with tf.GradientTape(watch_accessed_variables=False) as tape:
                tape.watch(weights)
                end_to_end = self.end_to_end(weights)
            loss, grad_e = self.objective(end_to_end)
            alive = self.divergence.check(t, loss)
            records = self.recorder.record(t, loss, alive, end_to_end, weights, records)

            def update():
                new = self.rule.new_weights(
                    weights, grad_e, lambda: tape.gradient(end_to_end, weights, output_gradients=grad_e)
                )
                for variable, old, value in zip(self.weights, weights, new):
                    mask = tf.reshape(alive, [-1] + [1] * (len(old.shape) - 1))  # per copy, any rank
                    variable.assign(tf.where(mask, value, old))
                return tf.constant(0)

            tf.cond(t < last, update, lambda: tf.constant(0))
            return t + 1, records

        def keep_going(t, _):
            return (t < stop) & tf.reduce_any(self.divergence.alive)

        t, records = tf.while_loop(keep_going, body, (start, self.recorder.read()))
        self.recorder.store(records)
        return t

    def train(self, chunk_size, progress):
        """Run every step in chunks of `chunk_size`; `progress(steps)` after each chunk.
        Returns the steady-state seconds per step (chunks after the first)."""
        steps = self.spec.steps
        t, last = 0, tf.constant(steps, tf.int64)
        steady_seconds, steady_steps = 0.0, 0
        while t <= steps:
            stop = min(t + chunk_size, steps + 1)
            chunk_started = time.perf_counter()
            reached = int(self.run(tf.constant(t, tf.int64), tf.constant(stop, tf.int64), last))
            if t > 0:
                steady_seconds += time.perf_counter() - chunk_started
                steady_steps += reached - t
            if progress is not None:
                progress(stop - t)
            if reached < stop:  # every copy diverged
                break
            t = stop
        return steady_seconds / steady_steps if steady_steps else float("nan")

    def result(self, started, seconds_per_step):
        spec = self.spec
        return SweepResult(
            learning_rates=spec.learning_rates,
            seeds=spec.copy_seeds,
            steps=spec.record_steps,
            diverged=~self.divergence.alive.numpy(),
            diverged_at=self.divergence.diverged_at.numpy(),
            final_weights=[w.numpy().astype(np.float64) for w in self.weights],
            elapsed=time.perf_counter() - started,
            seconds_per_step=seconds_per_step,
            config=spec.config(),
            **self.recorder.results(),
        )


def _progress_callback(progress, steps):
    """(callback, bar or None) for `progress` = bool or a callable taking steps done."""
    if callable(progress):
        return progress, None
    if not progress:
        return None, None
    bar = Progress(steps + 1, description="sweep", unit="step")
    return bar.advance, bar


def sweep(
    x,
    y,
    learning_rates,
    steps,
    *,
    depth=1,
    hidden_widths=1,
    update="gd",
    initializer="near_zero",
    seeds=(0,),
    loss=2,
    reduction="mean",
    weight_decay=0.0,
    record_steps=None,
    record_end_to_end=False,
    record_balancedness=False,
    record_window_max=False,
    thresholds=None,
    divergence_factor=1e3,
    dtype="float32",
    chunk_size=2000,
    progress=False,
    jit_compile=True,
    bias=False,
    bias_std=0.0,
):
    """Train one copy per (seed, learning rate) full batch, in one compiled loop.

    Args:
        x: (m, d) inputs. y: (m,) or (m, k) targets.
        learning_rates: non-empty list of eta > 0.
        steps: number of updates; losses exist for steps 0..steps.
        depth, hidden_widths: the net (PAPER Sec. 1); for update="end_to_end" they
            define how W_e(0) is drawn (product of the initialized factors) and N of Eq. 10.
        update: "gd" (Eq. 4), "end_to_end" (Eq. 10) or a keras optimizer / name.
        initializer: for the factors, e.g. "near_zero", "identity",
            `tfovp.initializers.Balanced(...)`; re-seeded with each entry of `seeds`.
        seeds: ints; copies with one seed share their initialization.
        loss: p of the l_p loss (real >= 1) or an `LpLoss`.
        reduction: "mean" (PAPER convention) or "sum" over examples.
        weight_decay: lambda of Eqs. 4 and 10.
        record_steps: steps whose loss is kept (default every step).
        record_end_to_end: also keep W_e at those steps.
        record_balancedness: also keep the Eq. 7 residual of every factor pair.
        record_window_max: also keep, for every recorded step, the largest loss from it
            to the next recorded step, over every step (so that max_{s >= t} L(s) is
            exact at the recorded steps).
        thresholds: losses; for each, the last step whose loss exceeded it is tracked
            over every step (so that "stays below from step t on" is exact).
        divergence_factor: a copy diverges when its loss exceeds this multiple of its
            initial loss (None: only non-finite losses count).
        dtype: "float32" or "float64"; the data must be finite in it.
        chunk_size: steps per compiled call (progress granularity).
        progress: True for a progress bar, or a callable receiving the number of steps
            done after each chunk.
        jit_compile: compile with XLA (not applied to the SVD route, see above).
        bias: a bias on every layer, as `torch.nn.Linear` has (see above; GD and Keras
            optimizers only: the end-to-end rule has no bias).
        bias_std: the biases' initial N(0, bias_std^2) draw, per seed (0: zeros).

    Returns:
        `SweepResult`.

    Raises:
        ValueError: for an invalid argument (named in the message).
        MemoryError: when the data, copies and records cannot fit in memory (before
            anything is allocated).
    """
    started = time.perf_counter()
    dtype = check_choice("dtype", keras.backend.standardize_dtype(dtype), ("float32", "float64"))
    x, y = _as_2d("x", x, dtype), _as_2d("y", y, dtype)
    if x.shape[0] != y.shape[0]:
        raise ValueError(
            f"`x` and `y` must have the same number of rows. Received: x.shape={x.shape}, y.shape={y.shape}"
        )
    steps = check_int("steps", steps, minimum=0)
    depth = check_int("depth", depth, minimum=1)
    seeds = tuple(check_int("seeds", s) for s in seeds)
    if not seeds:
        raise ValueError("`seeds` must be a non-empty list of ints. Received: seeds=[]")
    if divergence_factor is not None:
        check_real("divergence_factor", divergence_factor, minimum=1.0)
    update, optimizer = _resolve_update(update)
    if bias and update == "end_to_end":
        raise ValueError("`bias=True` needs update='gd' or a Keras optimizer: the end-to-end rule (Eq. 10) has no bias")
    spec = SweepSpec(
        p=_loss_power(loss),
        reduction=check_choice("reduction", reduction, REDUCTIONS),
        depth=depth,
        hidden_widths=tuple(hidden_widths_list(hidden_widths, depth)),
        update=update,
        optimizer=optimizer,
        initializer=initializers.get(initializer),
        seeds=seeds,
        grid=_check_grid(learning_rates),
        steps=steps,
        weight_decay=check_real("weight_decay", weight_decay, minimum=0.0),
        divergence_factor=divergence_factor,
        record_steps=_check_record_steps(record_steps, steps),
        record_end_to_end=bool(record_end_to_end),
        record_balancedness=bool(record_balancedness),
        record_window_max=bool(record_window_max),
        thresholds=_check_thresholds(thresholds),
        dtype=dtype,
        jit_compile=bool(jit_compile),
        bias=bool(bias),
        bias_std=check_real("bias_std", bias_std, minimum=0.0),
    )
    chunk_size = check_int("chunk_size", chunk_size, minimum=1)
    _check_memory(spec, x.shape[0], x.shape[1], y.shape[1])
    program = _SweepProgram(spec, x, y, _initial_factors(spec, x.shape[1], y.shape[1]))
    callback, bar = _progress_callback(progress, steps)
    try:
        seconds_per_step = program.train(chunk_size, callback)
    finally:
        if bar is not None:
            bar.close()
    return program.result(started, seconds_per_step)
