"""Batching sandbox work: many small plans, one ``Sandbox.evaluate_many`` call.

Validation and checking are written per item as a :class:`Plan` (the jobs an item needs plus a
function turning their results into a verdict). :func:`run_plans` gathers the jobs of a whole
batch, drops exact duplicates (n solver rollouts often give the same answer), makes a single
sandbox call and hands each plan its own results back.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from sandbox import Job, Result, Sandbox

T = TypeVar("T")


@dataclass
class Plan(Generic[T]):
    """The sandbox jobs one item needs and how to judge their results (in job order)."""

    jobs: list[Job] = field(default_factory=list)
    finish: Callable[[list[Result]], T] = field(default=lambda results: None)  # type: ignore[assignment]


def decided(value: T) -> Plan[T]:
    """A plan that needs no sandbox work (a format error, a static rejection, a deduction check)."""
    return Plan(jobs=[], finish=lambda _results: value)


def run_plans(sb: Sandbox, plans: Sequence[Plan[T]]) -> list[T]:
    """Run every plan's jobs in one ``evaluate_many`` call and return the plans' verdicts in order."""
    slots: dict[tuple, int] = {}
    jobs: list[Job] = []
    per_plan: list[list[int]] = []
    for plan in plans:
        indices = []
        for job in plan.jobs:
            key = (job.program, tuple(job.exprs), job.seed, job.timeout_s)
            if key not in slots:
                slots[key] = len(jobs)
                jobs.append(job)
            indices.append(slots[key])
        per_plan.append(indices)
    results = sb.evaluate_many(jobs) if jobs else []
    return [plan.finish([results[i] for i in indices]) for plan, indices in zip(plans, per_plan)]
