"""l_p losses: hand-computed values and gradients against finite differences."""

import keras
import numpy as np
import pytest
from gradients import gradients

from tfovp.losses import LpLoss, lp_loss

Y_TRUE = np.array([[1.0, -2.0], [0.5, 0.0], [3.0, 1.0]])
Y_PRED = np.array([[2.0, -2.5], [0.0, 1.0], [1.0, 1.0]])
# |errors| = [[1, .5], [.5, 1], [2, 0]]


@pytest.mark.parametrize(
    "p, per_example",
    [
        (2, [(1 + 0.25) / 2, (0.25 + 1) / 2, 4 / 2]),
        (4, [(1 + 0.0625) / 4, (0.0625 + 1) / 4, 16 / 4]),
        (1.5, [(1 + 0.5**1.5) / 1.5, (0.5**1.5 + 1) / 1.5, 2**1.5 / 1.5]),
    ],
)
def test_hand_computed_values(p, per_example):
    np.testing.assert_allclose(lp_loss(Y_TRUE, Y_PRED, p), per_example, rtol=1e-12)
    np.testing.assert_allclose(float(LpLoss(p, dtype="float64")(Y_TRUE, Y_PRED)), np.mean(per_example), rtol=1e-12)
    summed = LpLoss(p, reduction="sum", dtype="float64")(Y_TRUE, Y_PRED)
    np.testing.assert_allclose(float(summed), np.sum(per_example), rtol=1e-12)


@pytest.mark.parametrize("p", [1.0, 2.0, 3.0, 4.0])
def test_gradient_matches_central_differences(p):
    # float64 central differences with h = 1e-6 have truncation error O(h^2 |f'''|) and
    # round-off O(eps / h) ~ 1e-10: agreement to 1e-6 relative is a real check.
    rng = np.random.default_rng(int(p))
    y_true, y_pred = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    loss = LpLoss(p, dtype="float64")
    (analytic,) = gradients(lambda prediction: loss(y_true, prediction), [y_pred])
    numeric = np.zeros_like(y_pred)
    h = 1e-6
    for index in np.ndindex(*y_pred.shape):
        up, down = y_pred.copy(), y_pred.copy()
        up[index] += h
        down[index] -= h
        numeric[index] = (float(loss(y_true, up)) - float(loss(y_true, down))) / (2 * h)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-9)


def test_config_round_trip():
    loss = LpLoss(4, reduction="sum")
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(restored, LpLoss) and restored.p == 4 and restored.reduction == "sum"


@pytest.mark.parametrize("p", [0.5, 0, -2, float("nan")])
def test_p_below_one_is_rejected(p):
    with pytest.raises(ValueError, match="p="):
        LpLoss(p)
