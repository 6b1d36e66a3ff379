"""Every figure (2, 3, 4, 5 with its MNIST panel) with the same settings, then Figure 3
on Abalone as a robustness check. Curves are computed once and shared between figures
(Figure 2 reuses Figure 3's grids); a rerun replaces only what it recomputes. The
linear figures take about 3 to 9 minutes on 2 CPU cores, Figure 5's MNIST panel 30-55
more (results/README.md); `--quick` leaves the MNIST panel out.

    python -m reproduce.all [--quick] [--resume] [--steps N] [common flags]
"""

import dataclasses

from reproduce import cli, common, figure2, figure3, figure4, figure5, mnist_panel
from reproduce.study.progress import job_scope

MODULES = {"figure3": figure3, "figure2": figure2, "figure4": figure4, "figure5": figure5}


@dataclasses.dataclass
class Config(common.LinearConfig):
    steps: int | None = cli.setting(
        None,
        "iterations per curve of every figure (default: each figure's own: "
        "20,000 for Figures 2-4, the paper's 100,000 for Figure 5)",
    )

    QUICK = {"lrs": (1e-3, 1e-2, 1e-1), "rho": 2.0}  # and each figure's own quick budget; no MNIST panel

    def validate(self):
        common.StudyConfig.validate(self)
        if self.steps is not None:
            self.check_steps("steps", self.steps)
        cli.check(self.seed >= 0, f"--seed {self.seed}: expected an integer >= 0")


def configs(config):
    """{figure name: its Config} with the shared settings (and each figure's own budget
    unless --steps is given)."""
    shared = dataclasses.asdict(config)
    out = {}
    for name, module in MODULES.items():
        fields = {f.name for f in dataclasses.fields(module.Config)}
        values = {k: v for k, v in shared.items() if k in fields and k != "steps"}
        own = module.Config()
        values["steps"] = config.steps or (
            getattr(module.Config, "QUICK", common.StudyConfig.QUICK).get("steps", own.steps)
            if config.quick
            else own.steps
        )
        if module is figure5:
            values["panels"] = "left" if config.quick else own.panels
        out[name] = module.Config(**values)
    out["figure3-abalone"] = dataclasses.replace(out["figure3"], dataset="abalone")
    return out


def run(config, workdir, job=None):
    with job_scope(job, "all") as job:
        plans = configs(config)
        for name, figure_config in plans.items():  # the whole command's plan, for one progress bar
            common.plan(job, name, figure_config, MODULES[name.split("-")[0]].planned(figure_config))
        if "right" in plans["figure5"].panel_list():
            runs = mnist_panel.configs(plans["figure5"]).values()
            mnist_panel.expect(job, "figure5-mnist", [c for seeds in runs for c in seeds])
        results = {}
        for name, figure_config in plans.items():
            results[name] = MODULES[name.split("-")[0]].run(figure_config, workdir, job)
            job.write(f"{name}: {results[name]['elapsed_seconds']} s")
        return results


def main(argv=None):
    return cli.main(run, Config, __doc__, argv, prog="python -m reproduce.all")


if __name__ == "__main__":
    main()
