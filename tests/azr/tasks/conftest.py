"""One real sandbox shared by the task tests, plus a spy that counts its batched calls."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sandbox import Job, Result, Sandbox


class CountingSandbox:
    """The real sandbox, recording how many ``evaluate_many`` calls and jobs went through it."""

    def __init__(self, sb: Sandbox) -> None:
        self.sb = sb
        self.calls = 0
        self.jobs = 0

    def evaluate_many(self, jobs: list[Job]) -> list[Result]:
        self.calls += 1
        self.jobs += len(jobs)
        return self.sb.evaluate_many(jobs)


@pytest.fixture(scope="session")
def task_sandbox() -> Iterator[Sandbox]:
    with Sandbox(workers=2, timeout_s=5.0, memory_mb=256) as sb:
        yield sb


@pytest.fixture
def counting(task_sandbox: Sandbox) -> CountingSandbox:
    return CountingSandbox(task_sandbox)
