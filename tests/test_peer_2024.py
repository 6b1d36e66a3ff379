"""The 2024 student reproduction's findings: the criteria on hand-made final losses with
known answers, and the study's quick run (slow: about half a minute)."""

import numpy as np
import pandas as pd
import pytest

from reproduce.study import criteria


def _runs(linear, deep_by_width, inits=("random",), spread=1.0):
    """PeerRuns with depth 1 at `linear` and depths 2, 3 at {width: value}, five seeds
    (seed k multiplied by spread**(k/4))."""
    seeds = spread ** (np.arange(5) / 4)
    finals = {}
    for init in inits:
        finals[(init, 1, 1)] = linear * seeds
        for depth in (2, 3):
            for width, value in deep_by_width.items():
                finals[(init, depth, width)] = value * seeds
    return criteria.PeerRuns(finals)


def test_linear_better_and_deeper_better():
    assert criteria.peer_linear_better(_runs(1.0, {1: 1.5, 10: 1.2})).verdict == "PASS"
    # Within the 1 % margin on either side: neither refuted nor established (the margin on both sides).
    assert criteria.peer_linear_better(_runs(1.0, {1: 1.5, 10: 1.005})).verdict == "INCONCLUSIVE"
    assert criteria.peer_linear_better(_runs(1.0, {1: 1.5, 10: 0.995})).verdict == "INCONCLUSIVE"
    assert criteria.peer_linear_better(_runs(1.0, {1: 1.5, 10: 0.98})).verdict == "FAIL"  # a deeper net 2 % below
    assert criteria.peer_deeper_better(_runs(1.0, {1: 1.5, 10: 0.9})).verdict == "PASS"  # the best width counts
    assert criteria.peer_deeper_better(_runs(1.0, {1: 1.5, 10: 1.0})).verdict == "INCONCLUSIVE"
    assert criteria.peer_deeper_better(_runs(1.0, {1: 1.5, 10: 1.2})).verdict == "FAIL"


def test_width_and_seed_spread():
    assert criteria.peer_width_matters(_runs(1.0, {1: 1.0, 10: 1.2})).verdict == "PASS"
    assert criteria.peer_width_matters(_runs(1.0, {1: 1.0, 10: 1.05})).verdict == "FAIL"
    assert criteria.peer_width_matters(_runs(1.0, {1: 1.0})).verdict == "INCONCLUSIVE"  # one width
    assert criteria.peer_stochastic(_runs(1.0, {1: 1.0}, spread=1.3)).verdict == "PASS"
    assert criteria.peer_stochastic(_runs(1.0, {1: 1.0}, spread=1.05)).verdict == "FAIL"


def test_the_init_findings():
    runs = criteria.PeerRuns(
        {
            **_runs(1.0, {1: 2.0}, ("random",), spread=1.5).finals,
            **_runs(1.0, {1: 1.2}, ("near_zero",)).finals,
            **_runs(1.0, {1: 1.1}, ("orthogonal",)).finals,
        }
    )
    less, faster, no_speedup = criteria.peer_inits(runs)
    assert (less.verdict, faster.verdict, no_speedup.verdict) == ("PASS", "PASS", "PASS")
    quicker = criteria.PeerRuns({**runs.finals, **_runs(1.0, {1: 0.5}, ("orthogonal",)).finals})
    assert criteria.peer_inits(quicker)[2].verdict == "FAIL"  # deeper consistently better with orthogonal init
    # Ratios of 0.995-0.998 are within the 1 % margin: "near identity faster" cannot be told.
    close = criteria.PeerRuns({**runs.finals, **_runs(1.0, {1: 1.2 * 0.997}, ("orthogonal",)).finals})
    assert criteria.peer_inits(close)[1].verdict == "INCONCLUSIVE"


@pytest.mark.slow
def test_the_study_writes_its_table_and_the_student_setup_claims(data_dir, tmp_path):
    from reproduce import peer_2024

    summary = peer_2024.main(["--quick", "--out", str(tmp_path), "--data-dir", data_dir])
    table = pd.read_csv(tmp_path / "peer_2024.csv")
    assert set(table["setup"]) == {"student's", "tuned rates"} and len(summary["claims"]) == 6
    assert "| finding | data | student's | no bias |" in (tmp_path / "peer_2024.md").read_text()
