"""Shared fixtures for the embedded-model tests: one real sandbox, and the registry's induction
type swapped to a given shape for the duration of a test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from azr.tasks import get_task_type, register_task_type
from azr.tasks.absolute_zero import induction_type
from sandbox import Sandbox


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(workers=2, timeout_s=5.0, memory_mb=512) as sb:
        yield sb


@pytest.fixture
def induction_shape() -> Iterator[None]:
    """Register 6-input/3-shown induction (configs/tiny.yaml) and restore the previous type."""
    previous = get_task_type("induction")
    register_task_type(induction_type(6, 3), replace=True)
    yield
    register_task_type(previous, replace=True)
