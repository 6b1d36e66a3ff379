"""The paper's l_p losses (PAPER Sec. 1): l(y_hat, y) = (1/p) sum_r |y_hat_r - y_r|^p."""

import keras
from keras import ops

from tfovp.checks import check_float_dtype, check_real


def lp_terms(residual, p):
    """(|r|^p, sign(r) |r|^(p-1)) elementwise: the l_p loss terms of residuals r and their
    slope d(|r|^p / p)/dr, the one implementation behind `lp_loss` and `tfovp.sweep`
    (squares for p = 2 and 4, exact; `keras.ops` on any backend tensor)."""
    if p == 2:
        return ops.square(residual), residual
    if p == 4:
        squared = ops.square(residual)
        return ops.square(squared), squared * residual
    if p == 1:
        return ops.abs(residual), ops.sign(residual)
    magnitude = ops.abs(residual)
    return ops.power(magnitude, p), ops.sign(residual) * ops.power(magnitude, p - 1)


def lp_loss(y_true, y_pred, p):
    """Per-example (1/p) sum_r |y_pred_r - y_true_r|^p over the last axis."""
    y_pred = ops.convert_to_tensor(y_pred)
    y_true = ops.cast(y_true, y_pred.dtype)
    return ops.sum(lp_terms(y_pred - y_true, p)[0], axis=-1) / p


@keras.saving.register_keras_serializable(package="tfovp")
class LpLoss(keras.losses.Loss):
    """l_p loss, averaged over examples by default: (1/m) sum_i (1/p) ||y_hat_i - y_i||_p^p.

    Args:
        p: real >= 1 (the paper uses 2 and 4).
        reduction, name, dtype: as for any `keras.losses.Loss` ("sum" gives the
            blog's sum over examples).
    """

    def __init__(self, p=2, reduction="sum_over_batch_size", name=None, dtype=None):
        self.p = check_real("p", p, minimum=1.0)
        if dtype is not None:
            check_float_dtype("dtype", keras.backend.standardize_dtype(dtype))
        super().__init__(name=name or f"l{p:g}_loss", reduction=reduction, dtype=dtype)

    def call(self, y_true, y_pred):
        return lp_loss(y_true, y_pred, self.p)

    def get_config(self):
        config = super().get_config()
        config["p"] = self.p
        return config
