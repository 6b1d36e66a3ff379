"""TensorBoard scalars of trained curves: one run folder per curve, tags loss,
excess_loss, learning_rate, end_to_end_norm and balancedness (when recorded)."""

import pathlib

import numpy as np
import tensorflow as tf


def log_curve(
    log_dir, run_name, steps, losses, optimum, learning_rate, end_to_end_norm=None, balancedness=None, hparams=None
):
    """Write one curve's scalars to `log_dir/run_name` (losses etc. are per recorded step)."""
    writer = tf.summary.create_file_writer(str(pathlib.Path(log_dir) / run_name))
    with writer.as_default():
        if hparams:
            tf.summary.text("config", "\n".join(f"{k}: {v}" for k, v in sorted(hparams.items())), step=0)
        for i, step in enumerate(steps):
            step = int(step)
            if not np.isfinite(losses[i]):
                continue
            tf.summary.scalar("loss", losses[i], step=step)
            tf.summary.scalar("excess_loss", losses[i] - optimum, step=step)
            tf.summary.scalar("learning_rate", learning_rate, step=step)
            if end_to_end_norm is not None and np.isfinite(end_to_end_norm[i]):
                tf.summary.scalar("end_to_end_norm", end_to_end_norm[i], step=step)
            if balancedness is not None and np.isfinite(balancedness[i]):
                tf.summary.scalar("balancedness", balancedness[i], step=step)
    writer.flush()
    writer.close()
