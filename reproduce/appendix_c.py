"""Appendix C: the MNIST tutorial's speed-up under other settings (PAPER Sec. 5).

1. Base learning rate in the paper's grid for the original and the overparameterized
   model; the fastest of each (lowest mean minibatch loss over the last 10 % of the
   budget, diverged runs excluded) are compared.
2. The overparameterized model with the init std of the new factors in
   {1e-3, 5e-3, 1e-2, 5e-2, 1e-1, 5e-1} at the tutorial's learning rate (paper: almost
   identical curves, all far faster than the baseline).

Full runs (10 epochs each, 26 runs) take hours on a CPU; `--steps` shortens every run.

    python -m reproduce.appendix_c [--steps 500] [--lrs ...] [--stds ...] [--out results] [--resume]
"""

import argparse
import json
import time

import numpy as np
import pandas as pd

from mnist_tutorial import convolutional as tutorial
from reproduce.common import machine, versions
from reproduce.mnist_panel import train_stored
from tfovp.experiment import CurveStore
from tfovp.experiment import PAPER_GRID
from tfovp.plotting import plot_panels

STDS = (1e-3, 5e-3, 1e-2, 5e-2, 1e-1, 5e-1)


def _speed(result):
    """Mean minibatch loss over the last 10 % of the steps (inf if diverged)."""
    losses = np.asarray(result["history"]["minibatch_loss"], dtype=float)
    if result["diverged_at"] is not None or not np.isfinite(losses).all():
        return float("inf")
    tail = max(len(losses) // 10, 1)
    return float(losses[-tail:].mean())


def _std_panel(rows, curves, lrs):
    """The init-std runs (diverged ones named in the title, not plotted) and the original at lr 0.01."""
    group = "overparameterized, init std"
    diverged = [r for r in rows if r["group"] == group and r["diverged_at"] is not None]
    title = "overparameterized, init std of the new factors" + "".join(
        f"\n(std {r['init_std']:g} diverged at step {r['diverged_at']}, not plotted)" for r in diverged)
    skipped = {r["init_std"] for r in diverged}
    lines = [(f"std {std:g}", h["step"], h["minibatch_loss"], h["validation_error"])
             for (g, _, std), h in curves.items() if g == group and std not in skipped]
    if 0.01 in lrs:
        h = curves[("original", 0.01, 0.1)]
        lines.append(("original (lr 0.01)", h["step"], h["minibatch_loss"], h["validation_error"]))
    return {"kind": "minibatch", "title": title, "window": 100, "curves": lines}


def run(args):
    started = time.time()
    rows, curves = [], {}
    store = CurveStore(f"{args.out}/.curves/appendix_c")  # finished runs survive an interruption (--resume)
    jobs = [("original", False, lr, 0.1) for lr in args.lrs] + \
           [("overparameterized", True, lr, 0.1) for lr in args.lrs] + \
           [("overparameterized, init std", True, 0.01, std) for std in args.stds]
    for i, (group, factored, lr, std) in enumerate(jobs, start=1):
        config = tutorial.Config(overparameterize=factored, base_lr=lr, overparam_init_std=std, epochs=args.epochs,
                                 steps=args.steps, data_dir=args.data_dir, self_test=args.self_test, verbose=False)
        result = train_stored(config, store, args.resume, "overparameterized" if factored else "original")
        speed = _speed(result)
        print(f"[appendix_c {i}/{len(jobs)}] {group:28s} lr {lr:g} std {std:g}: last-10% loss {speed:.4f}, "
              f"test error {result['test_error']:.2f}%, {result['seconds']:.0f} s", flush=True)
        rows.append({"group": group, "overparameterized": factored, "base_lr": lr, "init_std": std,
                     "steps": result["steps"], "diverged_at": result["diverged_at"], "last_tenth_loss": speed,
                     "test_error": result["test_error"], "seconds": round(result["seconds"], 1)})
        curves[(group, lr, std)] = result["history"]
    frame = pd.DataFrame(rows)
    frame.to_csv(f"{args.out}/appendix_c.csv", index=False)
    best = {g: frame[frame["group"] == g].sort_values("last_tenth_loss").iloc[0] for g in ("original", "overparameterized")}
    panels = [
        {"kind": "minibatch", "title": "best base learning rate of each model", "window": 100,
         "curves": [(f"{g} (lr {b['base_lr']:g})", curves[(g, b["base_lr"], 0.1)]["step"],
                     curves[(g, b["base_lr"], 0.1)]["minibatch_loss"], curves[(g, b["base_lr"], 0.1)]["validation_error"])
                    for g, b in best.items()]},
        _std_panel(rows, curves, args.lrs),
    ]
    plot_panels(panels, f"{args.out}/appendix_c", title=f"Appendix C: MNIST tutorial, {rows[0]['steps']:,} steps per run")
    summary = {"elapsed_seconds": round(time.time() - started, 1), "versions": versions(), "machine": machine(),
               "training_seconds": round(float(frame["seconds"].sum()), 1),  # also when runs were resumed
               "arguments": vars(args), "best": {g: b.to_dict() for g, b in best.items()},
               "overparameterized_faster_at_best_rates": bool(best["overparameterized"]["last_tenth_loss"]
                                                              < best["original"]["last_tenth_loss"])}
    with open(f"{args.out}/appendix_c.json", "w") as handle:
        json.dump(summary, handle, indent=1, default=str)
    return summary


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=None, help="steps per run (default: the tutorial's epochs)")
    parser.add_argument("--epochs", type=float, default=10.0)
    parser.add_argument("--lrs", type=lambda t: tuple(float(v) for v in t.split(",")), default=PAPER_GRID)
    parser.add_argument("--stds", type=lambda t: tuple(float(v) for v in t.split(",")), default=STDS)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--self-test", action="store_true", help="the tutorial's fake data (smoke test)")
    parser.add_argument("--out", default="results")
    parser.add_argument("--resume", action="store_true", help="reuse runs finished by an earlier (interrupted) run")
    args = parser.parse_args(argv)
    if not args.lrs or min(args.lrs) <= 0 or not args.stds or min(args.stds) <= 0:
        parser.error("--lrs and --stds must be non-empty lists of positive numbers")
    summary = run(args)
    print(f"wrote {args.out}/appendix_c.* in {summary['elapsed_seconds']} s")
    return summary


if __name__ == "__main__":
    main()
