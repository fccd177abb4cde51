"""Gold replay over the real shared math sets: the gold answer, boxed, must grade correct (>= 99%), and
the same answer changed must grade wrong (<= 1% correct). This checks loaders, extraction and the
grader together on every gold in every set."""

from __future__ import annotations

from pathlib import Path

import pytest

from azr.eval.data import MATH_FILES, load_math
from azr.eval.math_equiv import parse_number
from azr.eval.math_grader import MathGrader
from azr.eval.runner import grade_math

# Rows per set, as documented in shared/benchmarks/README.md (aime25 holds 30 rows in the shipped file).
ROWS = {"aime24": 30, "aime25": 30, "amc23": 40, "math500": 500, "minerva": 272, "olympiadbench": 675,
        "gsm8k": 1319}


def changed(answer: str) -> str:
    """A wrong answer: a plain number plus one, anything else with "+1" appended."""
    number = parse_number(answer)
    if number is not None:
        bumped = number + 1
        return str(bumped.numerator) if bumped.denominator == 1 else f"{bumped.numerator}/{bumped.denominator}"
    return answer + "+1"


@pytest.mark.slow
@pytest.mark.parametrize("name", list(MATH_FILES))
def test_gold_replay(name: str, data_dir: Path, math_grader: MathGrader) -> None:
    items = load_math(name, data_dir)
    assert len(items) == ROWS[name]
    assert all(item.problem and item.answer for item in items)

    gold = grade_math(items, [[f"The answer is \\boxed{{{item.answer}}}"] for item in items], math_grader)
    missed = [(it.index, it.gold) for it in gold if not it.samples[0].correct]
    assert len(missed) <= 0.01 * len(items), f"{name}: gold answers graded wrong: {missed[:10]}"

    wrong = grade_math(items, [[f"The answer is \\boxed{{{changed(item.answer)}}}"] for item in items],
                       math_grader)
    accepted = [(it.index, it.gold, it.samples[0].extracted) for it in wrong if it.samples[0].correct]
    assert len(accepted) <= 0.01 * len(items), f"{name}: changed answers graded correct: {accepted[:10]}"
