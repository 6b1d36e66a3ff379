"""Claims judged over initialization seeds (`reproduce.seeds`): one verdict per seed by the
claim's own criterion, combined by the seed rule of `thresholds` (MIN_SEEDS)."""

import collections

from reproduce.study.claims import FAIL, INCONCLUSIVE, PASS, Claim, verdict
from reproduce.study.criteria.thresholds import MIN_SEEDS


def over_seeds(verdicts):
    """True when every seed PASSes, False when every seed FAILs, None otherwise (the
    seeds straddle the threshold, or one cannot decide) or with no seed."""
    verdicts = list(verdicts)
    if verdicts and all(v == PASS for v in verdicts):
        return True
    if verdicts and all(v == FAIL for v in verdicts):
        return False
    return None


def seeds_claim(figure, rows_by_seed, setting=""):
    """The claim row over seeds of one claim, from {seed: its Claim row in that seed's run}
    (each judged by the claim's criterion): the verdict of `over_seeds`, the verdicts per
    seed in `measured`."""
    seeds = sorted(rows_by_seed)
    first = rows_by_seed[seeds[0]]
    verdicts = [rows_by_seed[s].verdict for s in seeds]
    counted = collections.Counter(verdicts)
    holds = over_seeds(verdicts)
    tally = ", ".join(f"{counted[v]} {v}" for v in (PASS, FAIL, INCONCLUSIVE) if counted[v])
    noise = " (within seed noise)" if holds is None and counted[PASS] and counted[FAIL] else ""
    few = f"; fewer than the {MIN_SEEDS} seeds the rule asks for" if len(seeds) < MIN_SEEDS else ""
    measured = f"{len(seeds)} seeds: {tally}{noise}{few}; per seed " + ", ".join(
        f"{s}: {v}" for s, v in zip(seeds, verdicts)
    )
    criterion = (
        f"per seed: {first.criterion}; over the seeds: PASS if every seed passes, FAIL if every seed fails, "
        "else INCONCLUSIVE"
    )
    return Claim(figure, first.claim, criterion, measured, verdict(holds), setting, first.panel)
