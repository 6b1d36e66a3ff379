"""`EndToEndMonitor`: TensorBoard diagnostics of factored layers during `fit`."""

import pathlib

import keras
import numpy as np
import tensorflow as tf

from tfovp import diagnostics
from tfovp._checks import check_int
from tfovp.factoring import flat_layers
from tfovp.layers import FactoredDense


def factored_layers(model):
    """Every FactoredDense/DeepLinear layer of `model`, nested models included."""
    return [layer for layer in flat_layers(model) if isinstance(layer, FactoredDense)]


class EndToEndMonitor(keras.callbacks.Callback):
    """Writes, every `every_n_steps` training batches, for each factored layer L:

    - `L/end_to_end_norm`: ||W_e||_F of the product kernel,
    - `L/singular_value_i`: its `top_k` largest singular values,
    - `L/balancedness_j`: ||W_{j+1}^T W_{j+1} - W_j W_j^T||_F per factor pair (Eq. 7),
    - `L/end_to_end` (histogram) of the entries of W_e,
    and `learning_rate`, to TensorBoard under `log_dir/end_to_end`.
    """

    def __init__(self, log_dir, every_n_steps=100, top_k=5, histograms=True):
        super().__init__()
        self.log_dir = str(log_dir)
        self.every_n_steps = check_int("every_n_steps", every_n_steps, minimum=1)
        self.top_k = check_int("top_k", top_k, minimum=1)
        self.histograms = bool(histograms)
        self.step = 0
        self.writer = None

    def on_train_begin(self, logs=None):
        if self.writer is None:
            self.writer = tf.summary.create_file_writer(str(pathlib.Path(self.log_dir) / "end_to_end"))

    def on_train_batch_end(self, batch, logs=None):
        if self.step % self.every_n_steps == 0:
            self.write(self.step)
        self.step += 1

    def write(self, step):
        """Write every scalar (and histogram) for `step` now."""
        with self.writer.as_default(step=step):
            optimizer = getattr(self.model, "optimizer", None)
            if optimizer is not None:
                tf.summary.scalar("learning_rate", float(np.asarray(optimizer.learning_rate)))
            for layer in factored_layers(self.model):
                kernel = np.asarray(layer.kernel, dtype=np.float64)
                tf.summary.scalar(f"{layer.name}/end_to_end_norm", float(np.linalg.norm(kernel)))
                for i, value in enumerate(diagnostics.singular_values(kernel, top=self.top_k)):
                    tf.summary.scalar(f"{layer.name}/singular_value_{i}", float(value))
                for j, value in enumerate(diagnostics.balancedness(layer.factors)):
                    tf.summary.scalar(f"{layer.name}/balancedness_{j}", float(value))
                if self.histograms:
                    tf.summary.histogram(f"{layer.name}/end_to_end", kernel)
        self.writer.flush()

    def on_train_end(self, logs=None):
        if self.writer is not None:
            self.writer.flush()
