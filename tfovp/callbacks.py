"""`EndToEndMonitor`: TensorBoard diagnostics of factored layers during `fit`."""

import pathlib

import keras
import numpy as np

from tfovp import diagnostics
from tfovp.checks import check_int
from tfovp.factoring import flat_layers
from tfovp.layers import FactoredDense

RELATIVE = (
    "Eq. 7 residual ||W_{j+1}^T W_{j+1} - W_j W_j^T||_F relative to the larger of ||W_{j+1}^T W_{j+1}||_F and "
    "||W_j W_j^T||_F (about ||W_j||_F^2); 0 means exactly balanced"
)
ABSOLUTE = "Eq. 7 residual ||W_{j+1}^T W_{j+1} - W_j W_j^T||_F (paper indices)"


def factored_layers(model):
    """Every FactoredDense/DeepLinear layer of `model`, nested models included."""
    return [layer for layer in flat_layers(model) if isinstance(layer, FactoredDense)]


class EndToEndMonitor(keras.callbacks.Callback):
    """Writes, every `every_n_steps` training batches, for each factored layer L:

    - `L/end_to_end_norm`: ||W_e||_F of the product kernel,
    - `L/singular_value_i`: its `top_k` largest singular values,
    - `L/balancedness_j`: ||W_{j+1}^T W_{j+1} - W_j W_j^T||_F per factor pair (Eq. 7)
      relative to the larger Frobenius norm of the two Gram matrices (about
      ||W_j||_F^2), so that it reads the same at every init scale, and
      `L/balancedness_absolute_j`, the residual itself,
    - `L/end_to_end` (histogram) of the entries of W_e,
    and `learning_rate`, to TensorBoard under `log_dir/end_to_end`; and the same once
    more for the final state at the end of training.

    It reads the weights as NumPy arrays, so it works on every Keras backend, and writes
    the events with `tf.summary`: TensorFlow must be installed, whichever backend trains.
    """

    def __init__(self, log_dir, every_n_steps=100, top_k=5, histograms=True):
        super().__init__()
        try:
            import tensorflow  # noqa: F401
        except ImportError as error:
            raise ValueError(
                f"EndToEndMonitor writes TensorBoard events with tf.summary, and TensorFlow is not installed "
                f"(Keras backend: {keras.backend.backend()}). Received: log_dir={log_dir!r}"
            ) from error
        self.log_dir = str(log_dir)
        self.every_n_steps = check_int("every_n_steps", every_n_steps, minimum=1)
        self.top_k = check_int("top_k", top_k, minimum=1)
        self.histograms = bool(histograms)
        self.step = 0
        self.written = -1  # the last step written
        self.writer = None

    def on_train_begin(self, logs=None):
        import tensorflow as tf

        if self.writer is None:
            self.writer = tf.summary.create_file_writer(str(pathlib.Path(self.log_dir) / "end_to_end"))

    def on_train_batch_end(self, batch, logs=None):
        if self.step % self.every_n_steps == 0:
            self.write(self.step)
        self.step += 1

    def write(self, step):
        """Write every scalar (and histogram) for `step` now."""
        import tensorflow as tf

        with self.writer.as_default(step=step):
            optimizer = getattr(self.model, "optimizer", None)
            if optimizer is not None:
                tf.summary.scalar("learning_rate", float(keras.ops.convert_to_numpy(optimizer.learning_rate)))
            for layer in factored_layers(self.model):
                kernel = np.asarray(keras.ops.convert_to_numpy(layer.kernel), dtype=np.float64)
                tf.summary.scalar(f"{layer.name}/end_to_end_norm", float(np.linalg.norm(kernel)))
                for i, value in enumerate(diagnostics.singular_values(kernel, top=self.top_k)):
                    tf.summary.scalar(f"{layer.name}/singular_value_{i}", float(value))
                relative = diagnostics.balancedness(layer.factors, relative=True)
                for j, (value, absolute) in enumerate(zip(relative, diagnostics.balancedness(layer.factors))):
                    tf.summary.scalar(f"{layer.name}/balancedness_{j}", float(value), description=RELATIVE)
                    tf.summary.scalar(f"{layer.name}/balancedness_absolute_{j}", float(absolute), description=ABSOLUTE)
                if self.histograms:
                    tf.summary.histogram(f"{layer.name}/end_to_end", kernel)
        self.writer.flush()
        self.written = step

    def on_train_end(self, logs=None):
        """The final state, unless the last step was written already."""
        if self.writer is not None and self.step > 0 and self.written != self.step - 1:
            self.write(self.step - 1)
