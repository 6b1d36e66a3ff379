"""Figure 4: depth against adaptive optimizers on Ethanol, l4 loss, best rate of the grid each.

Left: the depth-3 net (width 1) under GD against the linear model under AdaGrad and under
AdaDelta. Right: Adam on the linear model against Adam on depth-2 and depth-3 nets.
Keras' optimizers with their default settings; only the learning rate is searched.

Paper's finding: depth-3 GD beats AdaGrad and AdaDelta; depth further accelerates Adam.

    python -m reproduce.figure4 [--quick] [--steps N] ...
"""

import dataclasses

from reproduce import common
from tfovp.claims import Claim, fmt_iterations, verdict
from tfovp.experiment import CurveSpec

LEFT = [("depth-3 net, GD", 3, "gd"), ("linear model, AdaGrad", 1, "adagrad"),
        ("linear model, AdaDelta", 1, "adadelta")]
RIGHT = [("linear model, Adam", 1, "adam"), ("depth-2 net, Adam", 2, "adam"), ("depth-3 net, Adam", 3, "adam")]


@dataclasses.dataclass
class Config(common.Common):
    loss: float = 4.0  # p of the l_p loss (the paper's Fig. 4 uses l4)


def run(config, out):
    run = common.Run("figure4", config, out)
    p = config.loss
    for label, depth, update in LEFT + RIGHT:
        run.curve(CurveSpec(label, depth=depth, update=update, loss=p))
    speed = {label: common.speed(run, label, p) for label, _, _ in LEFT + RIGHT}
    setting = common.setting_text(config)
    gd = speed["depth-3 net, GD"]
    beats = [common.faster(gd, speed[k]) for k in ("linear model, AdaGrad", "linear model, AdaDelta")]
    adam = [common.faster(speed[k], speed["linear model, Adam"]) for k in ("depth-2 net, Adam", "depth-3 net, Adam")]
    claims = [
        Claim("figure4", f"l{p:g}: depth-3 GD beats AdaGrad and AdaDelta on the linear model",
              "iterations to the level, best rate each: depth-3 GD < AdaGrad and < AdaDelta",
              ", ".join(f"{k}: {fmt_iterations(speed[k][0])}" for k, _, _ in LEFT),
              verdict(None if None in beats else all(beats)), setting),
        Claim("figure4", f"l{p:g}: depth accelerates Adam",
              "iterations to the level, best rate each: Adam on depth 2 and on depth 3 < Adam on depth 1",
              ", ".join(f"{k}: {fmt_iterations(speed[k][0])}" for k, _, _ in RIGHT),
              verdict(None if None in adam else all(adam)), setting),
    ]
    panels = [common.panel(run, f"l{p:g}: depth-3 GD vs adaptive optimizers", [(k, p) for k, _, _ in LEFT]),
              common.panel(run, f"l{p:g}: Adam with and without depth", [(k, p) for k, _, _ in RIGHT])]
    return run.write(panels, claims)


def main(argv=None):
    return common.main_wrapper(run, Config, __doc__, argv)


if __name__ == "__main__":
    main()
