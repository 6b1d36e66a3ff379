"""The claims of the theory checks: Theorem 2 (the end-to-end field is not a gradient
field for N >= 3) and Section 7 / Appendix B (the rule's speed-up on the two-parameter
problem)."""

from reproduce.study.criteria.rules import fmt_speedup, fmt_time, setting_row
from reproduce.study.criteria.thresholds import CIRCULATION_MARGIN, GRADIENT_TOLERANCE
from tfovp import speedup as speedup_module


def theorem2(circulations, setting=""):
    """Claims from {depth: circulation.Circulation}: N = 1 has zero circulation (a gradient
    field; the check of the method), every N >= 3 a non-zero one; N = 2 is reported in
    the measurement only (the paper's footnote: it needs extra assumptions)."""

    def text(c):
        return f"N={c.depth}: {c.value:.3g} (quadrature error {c.error:.2g}, r={c.inner:.3g}, R={c.outer:.3g})"

    rows = []
    if 1 in circulations:
        c = circulations[1]
        rows.append(
            setting_row(
                "theorem2",
                "N = 1 (plain gradient): zero circulation, the check of the measurement",
                f"|circulation| <= {GRADIENT_TOLERANCE:g} x the Richardson estimate of the quadrature error "
                "(+ 1e-12 x ||grad L(0)|| pi R)",
                text(c),
                abs(c.value) <= GRADIENT_TOLERANCE * c.error + 1e-12 * c.scale,
                setting,
            )
        )
    deep = [c for depth, c in sorted(circulations.items()) if depth >= 3]
    if deep:
        rows.append(
            setting_row(
                "theorem2",
                "N >= 3: the end-to-end field is not a gradient field (no regularizer reproduces it)",
                f"|circulation| >= {CIRCULATION_MARGIN:g} x the quadrature error for every N >= 3 "
                "(N = 2 reported only)",
                "; ".join(text(c) for depth, c in sorted(circulations.items()) if depth >= 2),
                all(abs(c.value) >= CIRCULATION_MARGIN * c.error for c in deep),
                setting,
            )
        )
    return rows


def appendix_b(gd_time, rule_time, net_time, bound, budget, setting=""):
    """Claims of Sec. 7 / App. B from the iterations until |w2 - y2| <= y2 / 2 of GD at
    its stability limit, the end-to-end rule (N = 2) and a real depth-2 net (None: every
    rate diverged; inf: not within `budget`). The speed-up T_GD / T is compared with the
    appendix's bound y1 / (4 eps1); if GD does not get there, T_GD > budget gives a lower
    bound."""

    def row(claim, contender_time):
        if gd_time is None or contender_time is None:
            return setting_row(
                "section7", claim, criterion, "every learning rate of a compared run diverged", None, setting
            )
        values = speedup_module.speedups([gd_time], [contender_time], budget, levels=[0.5])[0]
        measured = (
            f"T_GD {fmt_time(gd_time)}, T {fmt_time(contender_time)}: "
            + fmt_speedup(values).split(" at e")[0]
            + f" (bound y1/(4 eps1) = {bound:.4g})"
        )
        return setting_row("section7", claim, criterion, measured, values.at_least(bound), setting)

    criterion = (
        "iterations until |w2 - y2| <= y2/2, GD at the fastest stable rate up to its bound 2/y1^2: "
        "speed-up T_GD / T >= y1 / (4 eps1) (a lower bound counts if GD does not get there)"
    )
    return [
        row("App. B: the end-to-end rule (N = 2, eta = 1/(2 eps1 y1^2)) beats GD by more than y1/(4 eps1)", rule_time),
        row(
            "App. B: a real depth-2 net under GD (balanced init, fastest stable eta up to the rule's) does too",
            net_time,
        ),
    ]
