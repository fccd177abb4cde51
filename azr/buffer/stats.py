"""Buffer statistics for `azr buffer stats`: what is in the buffer and how it got there.

Everything is computed from one read transaction, so the figures agree with each other even while
training writes. The duplicate rate is duplicates / (tasks stored + duplicates): the share of
validated candidates that the buffer already held.
"""

from __future__ import annotations

import statistics
from typing import Any

from azr.buffer.store import DUPLICATE, TaskBuffer
from azr.tasks.record import SOURCES, TASK_TYPES

SOLVE_BINS = 10  # solve-rate histogram: [0, .1), [.1, .2), ..., [.9, 1.0]


def _complexity(values: list[tuple[int, int, int]]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for i, name in enumerate(("ast_nodes", "ast_depth", "lines")):
        column = [v[i] for v in values]
        if column:
            out[name] = {
                "mean": round(statistics.fmean(column), 2),
                "median": float(statistics.median(column)),
                "min": float(min(column)),
                "max": float(max(column)),
            }
    return out


def _solve_rates(rates: list[float], unattempted: int) -> dict[str, Any]:
    bins = [0] * SOLVE_BINS
    for r in rates:
        bins[min(int(r * SOLVE_BINS), SOLVE_BINS - 1)] += 1
    return {
        "attempted": len(rates),
        "unattempted": unattempted,
        "never_solved": sum(1 for r in rates if r == 0.0),
        "always_solved": sum(1 for r in rates if r == 1.0),
        "mean": round(statistics.fmean(rates), 4) if rates else None,
        "histogram": [
            {"low": i / SOLVE_BINS, "high": (i + 1) / SOLVE_BINS, "count": n} for i, n in enumerate(bins)
        ],
    }


def buffer_stats(buffer: TaskBuffer) -> dict[str, Any]:
    """All figures `azr buffer stats` shows, as plain JSON-ready data."""
    conn = buffer.connection
    with buffer.read_snapshot():
        rows = conn.execute(
            "SELECT type, source, step, attempts, successes, ast_nodes, ast_depth, lines FROM tasks"
        ).fetchall()
        rejection_rows = conn.execute("SELECT step, type, source, reason, count FROM rejections").fetchall()
        solve_steps = conn.execute(
            "SELECT step, SUM(attempts), SUM(successes), COUNT(*) FROM solves GROUP BY step ORDER BY step"
        ).fetchall()

    by_type = {t: 0 for t in TASK_TYPES}
    by_source = {s: 0 for s in SOURCES}
    by_type_source: dict[str, dict[str, int]] = {t: {s: 0 for s in SOURCES} for t in TASK_TYPES}
    complexity: dict[str, list[tuple[int, int, int]]] = {t: [] for t in TASK_TYPES}
    rates: dict[str, list[float]] = {t: [] for t in TASK_TYPES}
    unattempted = {t: 0 for t in TASK_TYPES}
    growth: dict[int, dict[str, Any]] = {}

    def step_row(step: int) -> dict[str, Any]:
        return growth.setdefault(step, {"step": step, "added": 0, "added_by_type": {t: 0 for t in TASK_TYPES},
                                        "duplicates": 0, "rejected": 0})  # fmt: skip

    for type_, source, step, attempts, successes, nodes, depth, lines in rows:
        by_type[type_] += 1
        by_source[source] += 1
        by_type_source[type_][source] += 1
        complexity[type_].append((nodes, depth, lines))
        if attempts:
            rates[type_].append(successes / attempts)
        else:
            unattempted[type_] += 1
        g = step_row(step)
        g["added"] += 1
        g["added_by_type"][type_] += 1

    reasons: dict[str, int] = {}
    reasons_by_type: dict[str, dict[str, int]] = {}
    reasons_by_source: dict[str, dict[str, int]] = {}
    for step, type_, source, reason, count in rejection_rows:
        reasons[reason] = reasons.get(reason, 0) + count
        key = type_ or "(unknown)"
        reasons_by_type.setdefault(key, {})[reason] = reasons_by_type.get(key, {}).get(reason, 0) + count
        reasons_by_source.setdefault(source, {})[reason] = reasons_by_source.get(source, {}).get(reason, 0) + count
        g = step_row(step)
        g["duplicates" if reason == DUPLICATE else "rejected"] += count

    total = len(rows)
    duplicates = reasons.get(DUPLICATE, 0)
    rejected = sum(n for r, n in reasons.items() if r != DUPLICATE)
    cumulative = 0
    for step in sorted(growth):
        cumulative += growth[step]["added"]
        growth[step]["total"] = cumulative
    all_rates = [r for t in TASK_TYPES for r in rates[t]]
    return {
        "path": buffer.path,
        "tasks": total,
        "by_type": by_type,
        "by_source": by_source,
        "by_type_source": by_type_source,
        "rejections": {
            "total": rejected,
            "by_reason": dict(sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))),
            "by_type": reasons_by_type,
            "by_source": reasons_by_source,
        },
        "duplicates": duplicates,
        "duplicate_rate": round(duplicates / (total + duplicates), 4) if total + duplicates else 0.0,
        "rejection_rate": round(rejected / (total + duplicates + rejected), 4) if total + duplicates + rejected else 0.0,
        "solve_rate": {
            "all": _solve_rates(all_rates, sum(unattempted.values())),
            **{t: _solve_rates(rates[t], unattempted[t]) for t in TASK_TYPES},
        },
        "solves_per_step": [
            {"step": s, "attempts": a, "successes": k, "tasks": n} for s, a, k, n in solve_steps
        ],
        "complexity": {t: _complexity(complexity[t]) for t in TASK_TYPES},
        "growth": [growth[s] for s in sorted(growth)],
    }
