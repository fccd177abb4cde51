"""Fixtures for the evaluation tests: the shared benchmark files (skip when absent), real graders."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from azr.eval.data import default_data_dir


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = default_data_dir()
    if path is None:
        pytest.skip("shared benchmark files not found (expected ../shared/benchmarks beside the project root)")
    return path


@pytest.fixture(scope="session", autouse=True)
def _eval_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """MBPP+ reference runs are cached under a test-only folder, shared by the tests of one session."""
    mp = pytest.MonkeyPatch()
    mp.setenv("AZR_CACHE_DIR", str(tmp_path_factory.mktemp("azr_cache")))
    yield
    mp.undo()


@pytest.fixture(scope="session")
def math_grader() -> Iterator[object]:
    from azr.eval.math_grader import MathGrader

    with MathGrader(workers=2, timeout_s=3.0) as grader:
        yield grader


@pytest.fixture(scope="session")
def code_grader() -> Iterator[object]:
    from azr.eval.code_grader import CodeGrader

    with CodeGrader(workers=2) as grader:
        yield grader
