"""Metrics: the unbiased pass@k estimator against hand-computed values, avg@k, errors and intervals."""

from __future__ import annotations

import math

import pytest

from azr.eval.metrics import Metric, bootstrap_ci, headline, k_values, mean_metric, pass_at_k, summarize


@pytest.mark.parametrize(
    ("n", "c", "k", "expected"),
    [
        (5, 2, 2, 1 - 3 / 10),  # 1 - C(3,2)/C(5,2)
        (10, 3, 1, 0.3),  # pass@1 is c/n
        (10, 3, 5, 1 - 21 / 252),  # 1 - C(7,5)/C(10,5)
        (4, 1, 4, 1.0),  # one correct among 4, all 4 drawn: certain (biased bootstraps report 0.684)
        (4, 1, 2, 1 - 3 / 6),  # 1 - C(3,2)/C(4,2)
        (10, 0, 5, 0.0),
        (10, 10, 1, 1.0),
        (16, 2, 8, 1 - 3003 / 12870),  # 1 - C(14,8)/C(16,8)
    ],
)
def test_pass_at_k_hand_computed(n: int, c: int, k: int, expected: float) -> None:
    assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)


def test_pass_at_k_matches_binomial_formula_on_a_grid() -> None:
    for n in range(1, 21):
        for c in range(n + 1):
            for k in range(1, n + 1):
                exact = 1 - math.comb(n - c, k) / math.comb(n, k)
                assert pass_at_k(n, c, k) == pytest.approx(exact, abs=1e-12)


@pytest.mark.parametrize(("n", "c", "k"), [(3, 4, 1), (3, -1, 1), (3, 1, 0), (3, 1, 4)])
def test_pass_at_k_rejects_impossible_counts(n: int, c: int, k: int) -> None:
    with pytest.raises(ValueError, match="pass_at_k"):
        pass_at_k(n, c, k)


def test_k_values() -> None:
    assert k_values(1) == [1]
    assert k_values(8) == [1, 2, 4, 8]
    assert k_values(10) == [1, 2, 4, 8, 10]


def test_greedy_pass_at_1_with_standard_error_and_interval() -> None:
    correct = [[True]] * 9 + [[False]] * 21  # 9 of 30, AIME-sized
    metrics = summarize(correct, greedy=True)
    m = metrics["pass@1"]
    assert isinstance(m, Metric) and m.n == 30
    assert m.value == pytest.approx(0.3)
    # sample std (ddof=1) of 0/1 values over sqrt(n)
    assert m.stderr == pytest.approx(math.sqrt(0.3 * 0.7 * 30 / 29) / math.sqrt(30))
    assert m.ci_low < 0.3 < m.ci_high
    assert m.ci_high - m.ci_low == pytest.approx(2 * 1.96 * m.stderr, rel=0.25)
    assert headline(metrics) is m


def test_avg_at_k_pass_at_k_and_spread_over_runs() -> None:
    # 4 problems x 4 samples: per-problem correct counts 4, 2, 1, 0
    correct = [[True] * 4, [True, False, True, False], [False, False, True, False], [False] * 4]
    metrics = summarize(correct, greedy=False)
    assert metrics["avg@4"].value == pytest.approx((1 + 0.5 + 0.25 + 0) / 4)  # type: ignore[union-attr]
    assert metrics["pass@2"].value == pytest.approx((1 + pass_at_k(4, 2, 2) + pass_at_k(4, 1, 2) + 0) / 4)  # type: ignore[union-attr]
    assert metrics["pass@4"].value == pytest.approx(3 / 4)  # type: ignore[union-attr]
    runs = [2 / 4, 1 / 4, 3 / 4, 1 / 4]  # accuracy of sample 1, 2, 3, 4 over the problems
    mean = sum(runs) / 4
    assert metrics["std_over_runs"] == pytest.approx(math.sqrt(sum((r - mean) ** 2 for r in runs) / 3))
    assert headline(metrics) is metrics["avg@4"]


def test_uneven_sample_counts_use_the_smallest_k() -> None:
    metrics = summarize([[True, False, True], [False, True]], greedy=False)
    assert set(metrics) == {"avg@2", "pass@2", "std_over_runs"}
    assert metrics["pass@2"].value == pytest.approx((pass_at_k(3, 2, 2) + 1.0) / 2)  # type: ignore[union-attr]


def test_bootstrap_is_deterministic_and_degenerate_cases() -> None:
    values = [1.0, 0.0, 1.0, 1.0, 0.0]
    assert bootstrap_ci(values) == bootstrap_ci(values)
    assert bootstrap_ci([1.0] * 5) == (1.0, 1.0)
    single = mean_metric("pass@1", [1.0])
    assert single.value == 1.0 and math.isnan(single.stderr)
    assert summarize([], greedy=True) == {}
    with pytest.raises(ValueError, match="at least one graded sample"):
        summarize([[True], []], greedy=True)
