"""The sweep's step loop on TensorFlow (the reference): a `tf.while_loop` inside a
jit-compiled `tf.function`, the weights and records in `tf.Variable`s (`tfovp.sweep`
describes what it computes)."""

import typing

import numpy as np
import tensorflow as tf

from tfovp._chunks import run_in_chunks, snapshots_array
from tfovp._factors import product
from tfovp.diagnostics import gram_residuals
from tfovp.end_to_end import precondition
from tfovp.losses import lp_terms


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


class SweepProgram:
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
        """Run every step in chunks (`tfovp._chunks.run_in_chunks`), keeping `last_above` as
        it stands after each of the spec's snapshot steps; the steady-state seconds per step."""
        last = tf.constant(self.spec.steps, tf.int64)
        self.snapshots = {}

        def chunk(start, stop):
            return int(self.run(tf.constant(start, tf.int64), tf.constant(stop, tf.int64), last))

        def snapshot(step):
            self.snapshots[step] = self.recorder.buffers.last_above.numpy()

        return run_in_chunks(chunk, self.spec.steps, chunk_size, progress, self.spec.snapshot_steps, snapshot)

    def result_fields(self):
        """The `SweepResult` fields the loop produced."""
        return {
            "diverged": ~self.divergence.alive.numpy(),
            "diverged_at": self.divergence.diverged_at.numpy(),
            "final_weights": [w.numpy().astype(np.float64) for w in self.weights],
            "last_above_at": snapshots_array(self.spec, self.snapshots),
            **self.recorder.results(),
        }
