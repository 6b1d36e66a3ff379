"""Every figure (2, 3, 4, 5 with its MNIST panel) with the same settings, then Figure 3
on Abalone as a robustness check. Curves are computed once and shared between figures
(Figure 2 reuses Figure 3's grids). The linear figures take about 9 minutes on 2 CPU
cores, Figure 5's MNIST panel 30-55 more (results/README.md); `--quick` leaves the MNIST panel out.

    python -m reproduce.all [--quick] [--resume] [common flags]
"""

import dataclasses
import shutil
import sys

from reproduce import common, figure2, figure3, figure4, figure5


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    config, out = common.parse_config(common.Common, argv, __doc__)
    shared = {k: v for k, v in dataclasses.asdict(config).items()}
    if not config.resume:  # start clean, then let later figures reuse earlier curves
        shutil.rmtree(f"{out}/.curves", ignore_errors=True)
    shared["resume"] = True
    results = {}
    for module in (figure3, figure2, figure4, figure5):
        fields = {f.name for f in dataclasses.fields(module.Config)}
        values = {k: v for k, v in shared.items() if k in fields}
        if module is figure5:  # its own budget (the paper's 100K) and, with --quick, no MNIST panel
            if config.quick:
                values["panels"] = figure5.Config.QUICK["panels"]
            if "--steps" not in argv:
                values["steps"] = figure5.Config.QUICK["steps"] if config.quick else figure5.Config.steps
        results[module.__name__] = module.run(module.Config(**values), out)
    abalone = figure3.Config(**{**{k: v for k, v in shared.items()
                                   if k in {f.name for f in dataclasses.fields(figure3.Config)}},
                                "dataset": "abalone"})
    results["figure3-abalone"] = figure3.run(abalone, out)
    for name, result in results.items():
        print(f"{name}: {result['elapsed_seconds']} s")
    return results


if __name__ == "__main__":
    main()
