"""Fixtures for buffer tests: a real sandbox and small helpers to build tasks and buffers."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from azr.buffer.store import TaskBuffer
from sandbox import Sandbox

# The tests import their shared helpers (buffer_helpers.py) by name; with --import-mode=importlib
# pytest does not put test folders on sys.path, so this one does it for its own folder.
sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(workers=2, timeout_s=5.0, memory_mb=512) as sb:
        yield sb


@pytest.fixture
def buffer(tmp_path) -> Iterator[TaskBuffer]:  # type: ignore[no-untyped-def]
    with TaskBuffer(tmp_path / "buffer.db") as b:
        yield b
