"""The sweep's step loop on JAX: one `jax.jit` program per chunk of steps, a
`jax.lax.while_loop` over the steps, the weights, optimizer state, divergence flags and
records carried as its state (`tfovp.sweep` describes what it computes; the TensorFlow
loop in `tfovp._sweep_tf` is the reference it is tested against).

The gradient of every factor is the vector-Jacobian product of W_e = W_1 ... W_N with
G_e (`jax.vjp`), as the TensorFlow loop's tape gives it; a Keras optimizer runs through
its `stateless_apply` on zero scratch weights with learning rate 1, its step then scaled
by each copy's eta.
"""

import typing

import jax
import jax.numpy as jnp
import keras
import numpy as np

from tfovp._chunks import run_in_chunks, snapshots_array
from tfovp._factors import product
from tfovp.diagnostics import gram_residuals
from tfovp.end_to_end import precondition
from tfovp.losses import lp_terms


def affine_product(weights, depth):
    """[W_e; b_e] (C, d + 1, k) of factors `weights[:depth]` and biases `weights[depth:]`
    (the product of the augmented factors, as `tfovp._sweep_tf.affine_product`)."""
    factors, biases = weights[:depth], weights[depth:]
    out = None
    for j, (kernel, bias) in enumerate(zip(factors, biases)):
        block = jnp.concatenate([kernel, bias[:, None, :]], axis=1)
        if j < depth - 1:
            ones = jnp.concatenate([jnp.zeros_like(kernel[:, :, :1]), jnp.ones_like(bias[:, None, :1])], axis=1)
            block = jnp.concatenate([block, ones], axis=2)
        out = block if out is None else jnp.matmul(out, block)
    return out


class _State(typing.NamedTuple):
    """What the loop carries from step to step."""

    weights: list  # (C, ...) factors (or [W_e]), then biases
    optimizer: list  # the Keras optimizer's variables (empty without one)
    alive: object  # (C,) bool
    diverged_at: object  # (C,) step of divergence, -1 if none
    initial_loss: object  # (C,) L(0)
    losses: object  # (R + 1, C), the last row a spare that absorbs writes between records
    norms: object  # (R + 1, C)
    trajectory: object  # (R + 1, C, d, k) or a dummy row
    residuals: object  # (R + 1, C, N - 1, 2) or a dummy row
    pointer: object  # () the next recorded step's row
    window_max: object  # (R + 1, C) or a dummy row
    last_above: object  # (C, J)


class JaxSweepProgram:
    """One sweep's compiled step loop on JAX, with the TensorFlow program's interface
    (`train`, `result`)."""

    def __init__(self, spec, x, y, factors):
        self.spec = spec
        dtype = jnp.dtype(spec.dtype)
        if spec.bias:  # the affine map acts on [x, 1]
            x = np.hstack([x, np.ones((x.shape[0], 1), dtype=x.dtype)])
        self.factor_count = len(factors) // 2 if spec.bias else len(factors)
        copies, d, k = factors[0].shape[0], x.shape[1], y.shape[1]
        self.dtype = dtype
        self.scale = 1.0 / x.shape[0] if spec.reduction == "mean" else 1.0
        if spec.p == 2:
            self.gram = jnp.asarray(self.scale * (x.T @ x), dtype)
            self.cross = jnp.asarray(self.scale * (y.T @ x), dtype)
            self.offset = jnp.asarray(0.5 * self.scale * np.sum(y * y), dtype)
        else:
            self.x = jnp.asarray(x, dtype)
            self.xt = jnp.asarray(np.ascontiguousarray(x.T), dtype)
            self.yt = jnp.asarray(np.ascontiguousarray(y.T), dtype)
        self.lr = jnp.asarray(spec.learning_rates, dtype)
        self.index = jnp.int64 if jax.config.jax_enable_x64 else jnp.int32
        weights = [jnp.asarray(f, dtype) for f in factors]
        optimizer_state = []
        if spec.optimizer is not None:
            self.scratch = [keras.Variable(np.zeros(w.shape, spec.dtype), name=f"d{j}") for j, w in enumerate(weights)]
            spec.optimizer.build(self.scratch)
            optimizer_state = [v.value for v in spec.optimizer.variables]
        self.with_balancedness = spec.record_balancedness and self.factor_count > 1
        self.record_at = jnp.asarray(np.append(spec.record_steps, -1), self.index)
        self.thresholds = jnp.asarray(np.reshape(spec.thresholds, (1, -1)), dtype)
        self.rows = len(spec.record_steps)
        rows = self.rows + 1
        nan = jnp.full((rows, copies), jnp.nan, dtype)
        self.state = _State(
            weights=weights,
            optimizer=optimizer_state,
            alive=jnp.ones(copies, bool),
            diverged_at=-jnp.ones(copies, self.index),
            initial_loss=jnp.zeros(copies, dtype),
            losses=nan,
            norms=nan,
            trajectory=jnp.zeros((rows if spec.record_end_to_end else 1, copies, d, k), dtype),
            residuals=jnp.zeros(
                (rows if self.with_balancedness else 1, copies, max(self.factor_count - 1, 1), 2), dtype
            ),
            pointer=jnp.asarray(0, self.index),
            window_max=jnp.full((rows if spec.record_window_max else 1, copies), -jnp.inf, dtype),
            last_above=-jnp.ones((copies, spec.thresholds.size), self.index),
        )
        self.run = jax.jit(self._run)

    # ------------------------------------------------------------------ one step

    def end_to_end(self, weights):
        if self.spec.bias:
            return affine_product(weights, self.factor_count)
        return product(weights, right_to_left=True)

    def objective(self, end_to_end):
        """Per-copy L^1(W_e) (C,) and G_e (C, d, k), as `tfovp._sweep_tf._LpObjective`."""
        kernel_t = jnp.swapaxes(end_to_end, -1, -2)  # (C, k, d)
        if self.spec.p == 2:
            times_gram = jnp.einsum("ckd,de->cke", kernel_t, self.gram)
            loss = (
                0.5 * jnp.sum(kernel_t * times_gram, axis=(1, 2))
                - jnp.sum(kernel_t * self.cross, axis=(1, 2))
                + self.offset
            )
            grad_t = times_gram - self.cross
        else:
            copies, k, d = kernel_t.shape
            residual = jnp.reshape(jnp.matmul(jnp.reshape(kernel_t, (-1, d)), self.xt), (copies, k, -1)) - self.yt
            terms, slope = lp_terms(residual, self.spec.p)
            loss = self.scale / self.spec.p * jnp.sum(terms, axis=(1, 2))
            grad_t = jnp.reshape(self.scale * jnp.matmul(jnp.reshape(slope, (copies * k, -1)), self.x), (copies, k, d))
        return loss, jnp.swapaxes(grad_t, -1, -2)

    def rates(self, weights):
        return [jnp.reshape(self.lr, (-1,) + (1,) * (w.ndim - 1)) for w in weights]

    def new_weights(self, weights, optimizer_state, grad_e, factor_gradients):
        """(new weights, new optimizer state) of every copy (Eq. 4, Eq. 10 or the optimizer)."""
        spec, decay = self.spec, self.spec.weight_decay
        if spec.optimizer is not None:
            zeros = [jnp.zeros_like(w) for w in weights]
            steps, optimizer_state = spec.optimizer.stateless_apply(optimizer_state, factor_gradients(), zeros)
            rates = self.rates(weights)
            return [(1.0 - r * decay) * w + r * s for w, s, r in zip(weights, steps, rates)], optimizer_state
        if spec.update == "end_to_end":
            rate = jnp.reshape(self.lr, (-1, 1, 1))
            direction = precondition(weights[0], grad_e, spec.depth)
            return [(1.0 - rate * (decay * spec.depth)) * weights[0] - rate * direction], optimizer_state
        rates = self.rates(weights)
        return [(1.0 - r * decay) * w - r * g for w, g, r in zip(weights, factor_gradients(), rates)], optimizer_state

    def record(self, t, loss, alive, end_to_end, weights, state):
        """The records of `state` after step t (as `tfovp._sweep_tf._Recorder.record`)."""
        spec = self.spec
        recording = t == self.record_at[state.pointer]
        last_row = state.losses.shape[0] - 1
        row = jnp.where(recording, state.pointer, last_row)
        nan = jnp.full_like(loss, jnp.nan)
        norm = jnp.sqrt(jnp.sum(jnp.square(end_to_end), axis=(-2, -1)))
        changes = {
            "losses": state.losses.at[row].set(jnp.where(alive, loss, nan)),
            "norms": state.norms.at[row].set(jnp.where(alive, norm, nan)),
            "pointer": state.pointer + recording.astype(self.index),
        }
        if spec.record_end_to_end:
            changes["trajectory"] = state.trajectory.at[row].set(end_to_end)
        if self.with_balancedness:
            changes["residuals"] = state.residuals.at[row].set(gram_residuals(weights[: self.factor_count]))
        if spec.record_window_max:  # steps before the first record go to the spare last row
            pointer = changes["pointer"]
            window = jnp.where(pointer > 0, pointer - 1, last_row)
            changes["window_max"] = state.window_max.at[window].max(jnp.where(alive, loss, jnp.inf))
        if spec.thresholds.size:
            above = (loss[:, None] > self.thresholds) & alive[:, None]
            changes["last_above"] = jnp.where(above, t, state.last_above)
        return state._replace(**changes)

    def step(self, t, last, state):
        weights = state.weights
        end_to_end, pullback = jax.vjp(self.end_to_end, weights)
        loss, grad_e = self.objective(end_to_end)
        # divergence: a loss that is not finite or exceeds the factor times |L(0)|
        initial = jnp.where(t == 0, loss, state.initial_loss)
        ok = jnp.isfinite(loss)
        if self.spec.divergence_factor is not None:
            ok = ok & (loss <= self.spec.divergence_factor * jnp.abs(initial))
        alive = state.alive & ok
        diverged_at = jnp.where(state.alive & ~alive, t, state.diverged_at)
        state = state._replace(alive=alive, diverged_at=diverged_at, initial_loss=initial)
        state = self.record(t, loss, alive, end_to_end, weights, state)

        def update(_):
            new, optimizer_state = self.new_weights(weights, state.optimizer, grad_e, lambda: pullback(grad_e)[0])
            masks = [jnp.reshape(alive, (-1,) + (1,) * (w.ndim - 1)) for w in weights]
            return [jnp.where(m, n, w) for m, n, w in zip(masks, new, weights)], optimizer_state

        weights, optimizer_state = jax.lax.cond(t < last, update, lambda _: (weights, state.optimizer), None)
        return state._replace(weights=weights, optimizer=optimizer_state)

    def _run(self, state, start, stop, last):
        def body(carry):
            t, state = carry
            return t + 1, self.step(t, last, state)

        def keep_going(carry):
            t, state = carry
            return (t < stop) & jnp.any(state.alive)

        return jax.lax.while_loop(keep_going, body, (start, state))

    # ------------------------------------------------------------------ the chunks

    def train(self, chunk_size, progress):
        """Run every step in chunks (`tfovp._chunks.run_in_chunks`), keeping `last_above` as
        it stands after each of the spec's snapshot steps; the steady-state seconds per step."""
        last = jnp.asarray(self.spec.steps, self.index)
        self.snapshots = {}

        def chunk(start, stop):
            reached, self.state = self.run(
                self.state, jnp.asarray(start, self.index), jnp.asarray(stop, self.index), last
            )
            return int(reached)

        def snapshot(step):
            self.snapshots[step] = np.asarray(self.state.last_above, np.int64)

        return run_in_chunks(chunk, self.spec.steps, chunk_size, progress, self.spec.snapshot_steps, snapshot)

    def result_fields(self):
        """The `SweepResult` fields the loop produced."""
        spec, rows, state = self.spec, self.rows, self.state
        residuals = np.asarray(state.residuals)[:rows] if self.with_balancedness else None
        window = None
        if spec.record_window_max:
            values = np.asarray(state.window_max)[:rows].astype(np.float64)
            window = np.where(np.isneginf(values), np.inf, values)
        return {
            "diverged": ~np.asarray(state.alive),
            "diverged_at": np.asarray(state.diverged_at, np.int64),
            "final_weights": [np.asarray(w, np.float64) for w in state.weights],
            "last_above_at": snapshots_array(spec, self.snapshots),
            "losses": np.asarray(state.losses)[:rows].astype(np.float64),
            "end_to_end": np.asarray(state.trajectory)[:rows] if spec.record_end_to_end else None,
            "end_to_end_norm": np.asarray(state.norms)[:rows].astype(np.float64),
            "balancedness": None if residuals is None else residuals[..., 0],
            "balancedness_scale": None if residuals is None else residuals[..., 1],
            "window_max": window,
            "last_above": np.asarray(state.last_above, np.int64) if spec.thresholds.size else None,
        }
