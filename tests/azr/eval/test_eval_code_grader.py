"""Code grading in the real sandbox: canonical solutions pass, wrong/hostile ones fail, EvalPlus oracles."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from azr.eval.code_grader import CodeGrader, output_matches, py_literal
from azr.eval.data import load_code, load_humaneval
from azr.eval.references import cache_dir

# Canonical MBPP+ solutions that cannot be replayed here, with the reason. Mbpp/255 returns all
# 1.66 million combinations with replacement of 5 colours taken 77 at a time: its output text is far
# past what a sandbox result carries, so the item is excluded from MBPP+ scores and listed.
MBPP_CANONICAL_EXCEPTIONS = {"Mbpp/255": "not plain data (<opaque:too-large>)"}


def _fenced(code: str) -> str:
    return f"Here is the solution:\n```python\n{code}\n```\n"


def test_humaneval_canonical_pass_and_pass_bodies_fail(code_grader: CodeGrader) -> None:
    items = load_humaneval()
    canonical = code_grader.grade_many(items, [_fenced(it.canonical_solution) for it in items])
    assert [it.id for it, v in zip(items, canonical) if not v.correct] == []
    assert len(canonical) == 164
    stubs = code_grader.grade_many(items, [_fenced(it.prompt + "    pass\n") for it in items])
    assert sum(v.correct for v in stubs) == 0
    assert {v.status for v in stubs} <= {"error", "timeout"}


def test_humaneval_completion_style_response(code_grader: CodeGrader) -> None:
    item = load_humaneval(limit=1)[0]
    body = item.canonical_solution  # only the body, no `def`: taken as a completion of the prompt
    assert code_grader.grade_many([item], [body])[0].correct


@pytest.mark.slow
def test_mbppplus_canonical_solutions_pass(code_grader: CodeGrader, data_dir: Path) -> None:
    items = load_code("mbppplus", data_dir)
    verdicts = code_grader.grade_many(items, [_fenced(it.canonical_solution) for it in items])
    failing = {it.id: v.detail for it, v in zip(items, verdicts) if not v.correct}
    assert set(failing) == set(MBPP_CANONICAL_EXCEPTIONS), failing
    for task, reason in MBPP_CANONICAL_EXCEPTIONS.items():
        assert reason in failing[task]
        assert {v.status for it, v in zip(items, verdicts) if it.id == task} == {"reference_error"}
    assert any(cache_dir().glob("*.json"))  # references were cached for the next run


def test_mbppplus_wrong_and_hostile_solutions(code_grader: CodeGrader, data_dir: Path) -> None:
    item = load_code("mbppplus", data_dir, limit=1)[0]  # Mbpp/2 similar_elements (set-equality oracle)
    assert item.entry_point == "similar_elements"
    cases = {
        "right, other order": ("def similar_elements(a, b):\n    return tuple(sorted(set(a) & set(b), reverse=True))", "passed"),
        "wrong": ("def similar_elements(a, b):\n    return tuple(set(a) | set(b))", "failed"),
        "raises": ("def similar_elements(a, b):\n    raise ValueError('no')", "error"),
        "loops": ("def similar_elements(a, b):\n    while True:\n        pass", "timeout"),
        "swallows Exception": (
            "def similar_elements(a, b):\n    try:\n        while True:\n            pass\n    except Exception:\n"
            "        return ()", "timeout"),
        "always-equal object": (
            "class E:\n    def __eq__(self, o):\n        return True\n    def __hash__(self):\n        return 0\n"
            "    def __iter__(self):\n        return iter(())\ndef similar_elements(a, b):\n    return E()", "failed"),
        "no function": ("x = 1", "error"),
    }
    start = time.monotonic()
    verdicts = code_grader.grade_many([item] * len(cases), [_fenced(code) for code, _ in cases.values()])
    assert {name: v.status for name, v in zip(cases, verdicts)} == {name: s for name, (_, s) in cases.items()}
    assert [v.correct for v in verdicts] == [True] + [False] * (len(cases) - 1)
    assert "ran past" in verdicts[3].detail
    assert time.monotonic() - start < 20  # per-input limits (1 s here), not the 60 s job backstop


def test_output_matches_follows_evalplus() -> None:
    assert output_matches("f", [], 3, 3.0, 0)[0]  # Python equality, as EvalPlus
    assert not output_matches("f", [], [1, 2], [2, 1], 0)[0]
    assert output_matches("similar_elements", [], (2, 1), (1, 2), 0)[0]  # set-equality task
    assert output_matches("f", [], 0.30000001, 0.3, 0) == (True, 1e-6)  # float expectation: atol 1e-6
    assert not output_matches("f", [], 0.31, 0.3, 0)[0]
    assert output_matches("f", [], [1.00001], [1.0], 1e-4)[0]
    assert not output_matches("f", [], (1.00001,), [1.0], 1e-4)[0]  # type must match for allclose
    assert output_matches("sum_div", [], 0, 5, 0)[0]  # Mbpp/295 oracle
    assert not output_matches("similar_elements", [], [[1]], [(1,)], 0)[0]  # unhashable output: mismatch


def test_py_literal_round_trips_benchmark_inputs() -> None:
    value = [(1,), {2, 3}, set(), {"a": [1.5, float("inf"), float("-inf")]}, complex(1, -2), b"x", None, True]
    text = py_literal(value)
    assert text.count("float('inf')") == 1 and "set()" in text
    from sandbox import parse_literal

    assert parse_literal(text) == value
