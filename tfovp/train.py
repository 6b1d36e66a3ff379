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

Copies with the same seed share their initial weights, so a net and the rule started
with the same seed, depth, widths and initializer share W_e(0). A copy whose loss is not
finite or exceeds `divergence_factor` times its initial loss is marked diverged and
frozen; its later losses are NaN.
"""

import dataclasses
import time

import keras
import numpy as np
import tensorflow as tf

from tfovp import initializers
from tfovp._checks import check_choice, check_int, check_real, factor_shapes, hidden_widths_list
from tfovp.end_to_end import precondition
from tfovp.losses import LpLoss

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
    elapsed: float
    seconds_per_step: float
    config: dict

    def final_end_to_end(self):
        """(C, d, k) end-to-end kernels after training."""
        out = self.final_weights[0]
        for factor in self.final_weights[1:]:
            out = out @ factor
        return out

    def copy_index(self, learning_rate, seed=None):
        """Index of the copy with this learning rate (and seed, default the first)."""
        seed = self.seeds[0] if seed is None else seed
        hits = np.flatnonzero(np.isclose(self.learning_rates, learning_rate) & (self.seeds == seed))
        if hits.size == 0:
            raise KeyError(f"no copy with learning_rate={learning_rate}, seed={seed}")
        return int(hits[0])


def _as_2d(name, array, dtype):
    array = np.asarray(array, dtype=np.float64)
    if array.ndim == 1 and name == "y":
        array = array[:, None]
    if array.ndim != 2:
        raise ValueError(f"`{name}` must be 2-D. Received: {name}.shape={array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"`{name}` contains non-finite values.")
    return array.astype(dtype)


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
            f"`update` must be one of {list(UPDATES)}, a keras optimizer or its name. "
            f"Received: update={update!r}"
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
            f"`record_steps` must be non-empty and within [0, steps={steps}]. "
            f"Received: record_steps={record_steps!r}"
        )
    return record


class _SweepProgram:
    """Variables and the compiled step loop of one sweep (internal)."""

    def __init__(self, x, y, p, reduction, depth, factors, update, optimizer,
                 learning_rates, weight_decay, divergence_factor, record_steps,
                 record_end_to_end, record_balancedness, dtype, jit_compile):
        self.p, self.depth, self.update = p, depth, update
        self.weight_decay, self.divergence_factor = weight_decay, divergence_factor
        self.record_end_to_end = record_end_to_end
        self.record_balancedness = record_balancedness and len(factors) > 1
        copies = factors[0].shape[0]
        scale = 1.0 / x.shape[0] if reduction == "mean" else 1.0
        self.use_gram = p == 2
        if self.use_gram:
            # l2: L = 1/2 tr(W^T H W) - tr(W^T b) + c/2 with H = s X^T X, b = s X^T Y.
            self.gram = tf.constant(scale * (x.T @ x), dtype)
            self.cross = tf.constant(scale * (y.T @ x), dtype)  # (k, d)
            self.offset = tf.constant(0.5 * scale * np.sum(y * y), dtype)
        else:
            self.x = tf.constant(x, dtype)
            self.xt = tf.constant(np.ascontiguousarray(x.T), dtype)
            self.yt = tf.constant(np.ascontiguousarray(y.T), dtype)
        self.scale = scale
        self.lr = tf.constant(learning_rates.reshape(-1, 1, 1), dtype)
        self.weights = [tf.Variable(f, dtype=dtype, name=f"w{j}") for j, f in enumerate(factors)]
        self.optimizer = optimizer
        if optimizer is not None:
            self.scratch = [tf.Variable(tf.zeros_like(w), name=f"d{j}") for j, w in enumerate(self.weights)]
            optimizer.build(self.scratch)
        self.alive = tf.Variable(tf.ones(copies, tf.bool))
        self.diverged_at = tf.Variable(-tf.ones(copies, tf.int64))
        self.initial_loss = tf.Variable(tf.zeros(copies, dtype))
        self.record_at = tf.constant(np.append(record_steps, -1), tf.int64)
        rows = len(record_steps) + 1  # the extra row absorbs writes between records
        self.losses = tf.Variable(tf.fill((rows, copies), tf.constant(np.nan, dtype)))
        self.norms = tf.Variable(tf.fill((rows, copies), tf.constant(np.nan, dtype)))
        d, k = x.shape[1], y.shape[1]
        self.trajectory = tf.Variable(tf.zeros((rows if record_end_to_end else 1, copies, d, k), dtype))
        pairs = max(len(factors) - 1, 1)
        self.residuals = tf.Variable(tf.zeros((rows if self.record_balancedness else 1, copies, pairs), dtype))
        self.pointer = tf.Variable(tf.constant(0, tf.int64))
        self.run = tf.function(self._run, jit_compile=jit_compile)

    def end_to_end(self, weights):
        out = weights[-1]
        for w in reversed(weights[:-1]):
            out = tf.matmul(w, out)
        return out

    def loss_and_gradient(self, end_to_end):
        """Per-copy L^1(W_e) and G_e = dL^1/dW_e, both with the copy axis first."""
        kernel_t = tf.linalg.matrix_transpose(end_to_end)  # (C, k, d)
        if self.use_gram:
            times_gram = tf.einsum("ckd,de->cke", kernel_t, self.gram)
            loss = (0.5 * tf.reduce_sum(kernel_t * times_gram, axis=[1, 2])
                    - tf.reduce_sum(kernel_t * self.cross, axis=[1, 2]) + self.offset)
            grad_t = times_gram - self.cross
        else:
            copies, k, d = tf.unstack(tf.shape(kernel_t))
            rows = tf.reshape(kernel_t, (-1, d))
            residual = tf.reshape(tf.matmul(rows, self.xt), (copies, k, -1)) - self.yt
            magnitude = tf.abs(residual)
            if self.p == 4:
                squared = tf.square(residual)
                loss_terms, slope = tf.square(squared), squared * residual
            elif self.p == 1:
                loss_terms, slope = magnitude, tf.sign(residual)
            else:
                loss_terms = tf.pow(magnitude, self.p)
                slope = tf.sign(residual) * tf.pow(magnitude, self.p - 1)
            loss = self.scale / self.p * tf.reduce_sum(loss_terms, axis=[1, 2])
            grad_rows = self.scale * tf.matmul(tf.reshape(slope, (copies * k, -1)), self.x)
            grad_t = tf.reshape(grad_rows, (copies, k, d))
        return loss, tf.linalg.matrix_transpose(grad_t)

    def _new_weights(self, weights, end_to_end, tape, grad_e):
        lr = self.lr
        if self.update == "end_to_end":
            direction = precondition(weights[0], grad_e, self.depth)
            decay = 1.0 - lr * (self.weight_decay * self.depth)
            return [decay * weights[0] - lr * direction]
        grads = tape.gradient(end_to_end, weights, output_gradients=grad_e)
        if self.update == "gd":
            return [(1.0 - lr * self.weight_decay) * w - lr * g for w, g in zip(weights, grads)]
        for d in self.scratch:
            d.assign(tf.zeros_like(d))
        self.optimizer.apply(grads, self.scratch)
        return [(1.0 - lr * self.weight_decay) * w + lr * d for w, d in zip(weights, self.scratch)]

    @staticmethod
    def balancedness(weights):
        """(C, N-1) residuals of Eq. 7 in Keras orientation (see tfovp.diagnostics)."""
        residuals = [
            tf.norm(tf.matmul(upper, upper, transpose_b=True) - tf.matmul(lower, lower, transpose_a=True),
                    axis=[-2, -1])
            for lower, upper in zip(weights[:-1], weights[1:])
        ]
        return tf.stack(residuals, axis=-1)

    def _run(self, start, stop, last):
        def body(t, losses, norms, trajectory, residuals, pointer):
            weights = [w.read_value() for w in self.weights]
            with tf.GradientTape(watch_accessed_variables=False) as tape:
                tape.watch(weights)
                end_to_end = self.end_to_end(weights)
            loss, grad_e = self.loss_and_gradient(end_to_end)
            initial = tf.where(tf.equal(t, 0), loss, self.initial_loss)
            self.initial_loss.assign(initial)
            ok = tf.math.is_finite(loss)
            if self.divergence_factor is not None:
                ok = ok & (loss <= self.divergence_factor * tf.abs(initial))
            alive_before = self.alive.read_value()
            alive = alive_before & ok
            self.diverged_at.assign(tf.where(alive_before & ~alive, t, self.diverged_at))
            self.alive.assign(alive)
            recording = tf.equal(t, self.record_at[pointer])
            row = tf.where(recording, pointer, tf.cast(tf.shape(losses)[0] - 1, tf.int64))
            nan = tf.fill(tf.shape(loss), tf.constant(np.nan, loss.dtype))
            losses = tf.tensor_scatter_nd_update(losses, [[row]], [tf.where(alive, loss, nan)])
            norm = tf.norm(end_to_end, axis=[-2, -1])
            norms = tf.tensor_scatter_nd_update(norms, [[row]], [tf.where(alive, norm, nan)])
            if self.record_end_to_end:
                trajectory = tf.tensor_scatter_nd_update(trajectory, [[row]], [end_to_end])
            if self.record_balancedness:
                residuals = tf.tensor_scatter_nd_update(residuals, [[row]], [self.balancedness(weights)])
            pointer = pointer + tf.cast(recording, tf.int64)

            def update():
                new = self._new_weights(weights, end_to_end, tape, grad_e)
                mask = alive[:, None, None]
                for variable, old, value in zip(self.weights, weights, new):
                    variable.assign(tf.where(mask, value, old))
                return tf.constant(0)

            tf.cond(t < last, update, lambda: tf.constant(0))
            return t + 1, losses, norms, trajectory, residuals, pointer

        def keep_going(t, *_):
            return (t < stop) & tf.reduce_any(self.alive)

        t, losses, norms, trajectory, residuals, pointer = tf.while_loop(
            keep_going, body,
            (start, self.losses.read_value(), self.norms.read_value(), self.trajectory.read_value(),
             self.residuals.read_value(), self.pointer.read_value()),
        )
        self.losses.assign(losses)
        self.norms.assign(norms)
        self.trajectory.assign(trajectory)
        self.residuals.assign(residuals)
        self.pointer.assign(pointer)
        return t


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
    divergence_factor=1e3,
    dtype="float32",
    chunk_size=2000,
    progress=False,
    jit_compile=True,
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
        divergence_factor: a copy diverges when its loss exceeds this multiple of its
            initial loss (None: only non-finite losses count).
        dtype: "float32" or "float64".
        chunk_size: steps per compiled call (progress granularity).
        progress: show a progress bar.
        jit_compile: compile with XLA (not applied to the SVD route, see above).

    Returns:
        `SweepResult`.
    """
    started = time.perf_counter()
    dtype = check_choice("dtype", keras.backend.standardize_dtype(dtype), ("float32", "float64"))
    x, y = _as_2d("x", x, dtype), _as_2d("y", y, dtype)
    if x.shape[0] != y.shape[0]:
        raise ValueError(
            f"`x` and `y` must have the same number of rows. Received: x.shape={x.shape}, "
            f"y.shape={y.shape}"
        )
    rates = np.asarray(list(learning_rates), dtype=np.float64).ravel()
    if rates.size == 0 or not np.all(np.isfinite(rates)) or np.any(rates <= 0):
        raise ValueError(
            "`learning_rates` must be a non-empty list of finite values > 0. "
            f"Received: learning_rates={list(learning_rates)!r}"
        )
    steps = check_int("steps", steps, minimum=0)
    depth = check_int("depth", depth, minimum=1)
    widths = hidden_widths_list(hidden_widths, depth)
    seeds = [check_int("seeds", s) for s in seeds]
    if not seeds:
        raise ValueError("`seeds` must be a non-empty list of ints. Received: seeds=[]")
    p = _loss_power(loss)
    reduction = check_choice("reduction", reduction, REDUCTIONS)
    weight_decay = check_real("weight_decay", weight_decay, minimum=0.0)
    if divergence_factor is not None:
        check_real("divergence_factor", divergence_factor, minimum=1.0)
    chunk_size = check_int("chunk_size", chunk_size, minimum=1)
    update, optimizer = _resolve_update(update)
    record = _check_record_steps(record_steps, steps)
    initializer = initializers.get(initializer)

    shapes = factor_shapes(x.shape[1], y.shape[1], widths)
    per_seed = [
        [np.asarray(f, np.float64) for f in initializers.draw_factors(
            initializers.with_seed(initializer, seed), shapes, "float64")]
        for seed in seeds
    ]
    if update == "end_to_end":
        per_seed = [[initializers.product(fs)] for fs in per_seed]
    n_rates = rates.size
    factors = [
        np.repeat(np.stack([fs[j] for fs in per_seed]), n_rates, axis=0)
        for j in range(len(per_seed[0]))
    ]
    copy_rates = np.tile(rates, len(seeds))
    copy_seeds = np.repeat(np.asarray(seeds), n_rates)

    needs_svd = update == "end_to_end" and depth > 1 and min(x.shape[1], y.shape[1]) > 1
    program = _SweepProgram(
        x, y, p, reduction, depth, factors, update, optimizer, copy_rates, weight_decay,
        divergence_factor, record, record_end_to_end, record_balancedness, dtype,
        jit_compile and not needs_svd,
    )
    bar = keras.utils.Progbar(steps + 1, unit_name="step", stateful_metrics=["alive"]) if progress else None
    t = 0
    last = tf.constant(steps, tf.int64)
    steady_seconds, steady_steps = 0.0, 0
    while t <= steps:
        stop = min(t + chunk_size, steps + 1)
        chunk_started = time.perf_counter()
        reached = int(program.run(tf.constant(t, tf.int64), tf.constant(stop, tf.int64), last))
        if t > 0:
            steady_seconds += time.perf_counter() - chunk_started
            steady_steps += reached - t
        if bar is not None:
            alive = program.alive.numpy()
            bar.update(stop, values=[("alive", float(alive.sum()))])
        if reached < stop:  # every copy diverged
            break
        t = stop

    losses = program.losses.numpy()[: len(record)].astype(np.float64)
    trajectory = program.trajectory.numpy()[: len(record)] if record_end_to_end else None
    residuals = program.residuals.numpy()[: len(record)] if program.record_balancedness else None
    config = {
        "steps": steps, "depth": depth, "hidden_widths": widths,
        "update": update if optimizer is None else keras.optimizers.serialize(optimizer),
        "initializer": keras.initializers.serialize(initializer), "seeds": seeds,
        "learning_rates": rates.tolist(), "loss_p": p, "reduction": reduction,
        "weight_decay": weight_decay, "divergence_factor": divergence_factor, "dtype": dtype,
    }
    return SweepResult(
        learning_rates=copy_rates,
        seeds=copy_seeds,
        steps=record,
        losses=losses,
        diverged=~program.alive.numpy(),
        diverged_at=program.diverged_at.numpy(),
        final_weights=[w.numpy().astype(np.float64) for w in program.weights],
        end_to_end=trajectory,
        end_to_end_norm=program.norms.numpy()[: len(record)].astype(np.float64),
        balancedness=residuals,
        elapsed=time.perf_counter() - started,
        seconds_per_step=steady_seconds / steady_steps if steady_steps else float("nan"),
        config=config,
    )
