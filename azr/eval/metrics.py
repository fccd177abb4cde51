"""Benchmark metrics with their uncertainty: greedy pass@1, avg@k, unbiased pass@k.

Small sets are noisy (AIME has 30 problems: one problem is 3.3 points), so every number comes with a
standard error over problems and a percentile bootstrap interval (problems resampled with
replacement). With k > 1 samples, ``std_over_runs`` also gives the spread of the k single-sample
runs, the "± over seeds" that papers report.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

BOOTSTRAP_RESAMPLES = 2000
CI_LEVEL = 0.95


@dataclass(frozen=True)
class Metric:
    """A mean over problems, as a fraction in [0, 1]."""

    name: str
    value: float
    stderr: float  # standard error of the mean over problems (sample std, ddof=1)
    ci_low: float  # percentile bootstrap interval at CI_LEVEL
    ci_high: float
    n: int  # number of problems

    def to_dict(self) -> dict[str, float | int | str]:
        return asdict(self)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k (Chen et al. 2021): 1 - C(n-c, k) / C(n, k), the chance that at least one of k
    samples drawn without replacement from the n generated is correct. Product form, no big binomials."""
    if not 0 <= c <= n:
        raise ValueError(f"pass_at_k: need 0 <= c <= n, got n={n}, c={c}")
    if not 1 <= k <= n:
        raise ValueError(f"pass_at_k: need 1 <= k <= n, got n={n}, k={k}")
    if n - c < k:
        return 1.0
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


def bootstrap_ci(values: Sequence[float], resamples: int = BOOTSTRAP_RESAMPLES, level: float = CI_LEVEL,
                 seed: int = 0) -> tuple[float, float]:
    """Percentile interval of the mean under resampling of problems (fixed seed: reports are stable)."""
    data = np.asarray(values, dtype=float)
    if data.size == 0:
        return (math.nan, math.nan)
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, data.size, size=(resamples, data.size))].mean(axis=1)
    alpha = (1.0 - level) / 2
    return float(np.quantile(means, alpha)), float(np.quantile(means, 1 - alpha))


def mean_metric(name: str, per_problem: Sequence[float]) -> Metric:
    data = np.asarray(per_problem, dtype=float)
    n = int(data.size)
    if n == 0:
        return Metric(name, math.nan, math.nan, math.nan, math.nan, 0)
    stderr = float(data.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan
    low, high = bootstrap_ci(data)
    return Metric(name, float(data.mean()), stderr, low, high, n)


def k_values(n: int) -> list[int]:
    """1, 2, 4, 8, ... up to n, plus n itself."""
    ks = [1]
    while ks[-1] * 2 <= n:
        ks.append(ks[-1] * 2)
    if ks[-1] != n:
        ks.append(n)
    return ks


def summarize(correct: Sequence[Sequence[bool]], greedy: bool) -> dict[str, Metric | float]:
    """Metrics for one benchmark from per-problem sample correctness.

    ``greedy`` with one sample: ``pass@1`` (the paper's main-table number). With k samples: ``avg@k``
    (mean accuracy over samples, i.e. the pass@1 estimate), ``pass@j`` for j = 2, 4, ... <= k by the
    unbiased estimator, and ``std_over_runs``. Problems may carry different sample counts (responses
    graded from a file); then k is the smallest count and each problem uses its own n in pass@j.
    """
    if not correct:
        return {}
    if any(len(samples) == 0 for samples in correct):
        raise ValueError("summarize: every problem needs at least one graded sample")
    counts = [len(samples) for samples in correct]
    k = min(counts)
    out: dict[str, Metric | float] = {}
    if k == 1 and max(counts) == 1:
        name = "pass@1" if greedy else "avg@1"
        out[name] = mean_metric(name, [float(s[0]) for s in correct])
        return out
    out[f"avg@{k}"] = mean_metric(f"avg@{k}", [sum(s) / len(s) for s in correct])
    for j in k_values(k)[1:]:
        out[f"pass@{j}"] = mean_metric(f"pass@{j}", [pass_at_k(len(s), sum(s), j) for s in correct])
    runs = np.asarray([[float(s[i]) for s in correct] for i in range(k)]).mean(axis=1)
    out["std_over_runs"] = float(runs.std(ddof=1)) if k > 1 else math.nan
    return out


def headline(metrics: dict[str, Metric | float]) -> Metric | None:
    """The number a summary table shows: greedy pass@1, else avg@k."""
    for name, metric in metrics.items():
        if isinstance(metric, Metric) and (name == "pass@1" or name.startswith("avg@")):
            return metric
    return None
