"""Math grading: equivalent forms, wrong answers, plain numbers, and hostile input that hangs sympy."""

from __future__ import annotations

import time
from fractions import Fraction

import pytest

from azr.eval.extract import extract_math_answer
from azr.eval.math_equiv import numeric_verdict, parse_number
from azr.eval.math_grader import MathGrader, MathRequest

EQUIVALENT = [
    ("\\frac12", "0.5"),
    ("\\frac{1}{2}", "1/2"),
    ("\\dfrac{1}{2}", "\\frac12"),
    ("0.5", "\\tfrac{1}{2}"),
    ("\\frac43", "\\frac{4}{3}"),
    ("3", "x = 3"),
    ("x=3", "3"),
    ("y=2x+3", "y = 3 + 2x"),
    ("k+4", "n=k+4"),
    ("30^\\circ", "30"),
    ("30", "30^{\\circ}"),
    ("10\\text{ cm}", "10"),
    ("45", "45 \\text{ minutes}"),
    ("\\$18", "18"),
    ("50\\%", "50"),
    ("0.5", "50\\%"),
    ("[2,5)", "[2, 5)"),
    ("(0,9) \\cup (9,36)", "(0,9)\\cup(9,36)"),
    ("x \\in [1, 2]", "[1,2]"),
    ("1,2,3", "3,2,1"),
    ("\\{1,2\\}", "\\{2,1\\}"),
    ("3 \\pm 2 \\sqrt{2}", "3+2\\sqrt2, 3-2\\sqrt2"),
    ("\\left( 3, \\frac{\\pi}{2} \\right)", "(3,\\pi/2)"),
    ("2\\sqrt{3}", "\\sqrt{12}"),
    ("\\frac{\\sqrt{3}}{2}", "\\frac{1}{2}\\sqrt{3}"),
    ("x^5 - x^4 + x^3 - x^2 + x - 1", "-1 + x - x^2 + x^3 - x^4 + x^5"),
    ("6 - 5i", "6-5i"),
    ("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "\\begin{pmatrix}1\\\\2\\end{pmatrix}"),
    ("\\text{Evelyn}", "\\text{Evelyn}"),
    ("\\text{(C)}", "C"),
    ("1,000", "1000"),
]

DIFFERENT = [
    ("(2,5]", "[2,5]"),
    ("(0,9) \\cup (9,36)", "(0,36)"),
    ("\\frac{14}{3}", "4.67"),
    ("18", "19"),
    ("1450000", "1450001"),
    ("\\text{Evelyn}", "\\text{Bob}"),
    ("x^2+1", "x^2-1"),
    ("1,2,3", "1,2"),
]


def test_equivalent_forms_grade_correct(math_grader: MathGrader) -> None:
    verdicts = math_grader.grade_many([MathRequest(gold, pred) for gold, pred in EQUIVALENT])
    wrong = [(g, p, v.status) for (g, p), v in zip(EQUIVALENT, verdicts) if not v.correct]
    assert wrong == []


def test_different_answers_grade_wrong(math_grader: MathGrader) -> None:
    verdicts = math_grader.grade_many([MathRequest(gold, pred) for gold, pred in DIFFERENT])
    accepted = [(g, p) for (g, p), v in zip(DIFFERENT, verdicts) if v.correct]
    assert accepted == []


def test_extraction_then_grading_of_whole_responses(math_grader: MathGrader) -> None:
    responses = [
        "Step 1 ... we get \\boxed{\\dfrac{1}{2}}.",
        "First guess \\boxed{3}, but rechecking gives \\boxed{\\frac{1}{2}}",
        "<think>...</think><answer>0.5</answer>",
        "So the answer is $\\frac{2}{4}$.",
        "There is no final answer here, only 1/2 in passing",
    ]
    requests = [MathRequest("\\frac{1}{2}", extract_math_answer(r)) for r in responses]
    verdicts = math_grader.grade_many(requests)
    assert [v.correct for v in verdicts] == [True, True, True, True, False]
    assert verdicts[-1].status == "no_answer"


@pytest.mark.parametrize(
    ("text", "value"),
    [("1,000", 1000), ("\\$18", 18), ("18 dollars", 18), ("\\text{18}", 18), ("50\\%", 50), ("-\\frac{3}{4}", Fraction(-3, 4)),
     (".5", Fraction(1, 2)), ("2/3", Fraction(2, 3)), ("30^{\\circ}", 30), ("1{,}000", 1000),
     ("1,2,3", None), ("x=3", None), ("2n", None), ("5i", None), ("3 x", None), ("10^{10}", None)],
)
def test_parse_number(text: str, value: object) -> None:
    assert parse_number(text) == value


def test_numeric_sets_compare_as_numbers() -> None:
    assert numeric_verdict("27", "27.0", numeric=True) is True
    assert numeric_verdict("025", "25", numeric=True) is True
    assert numeric_verdict("18", "\\$18.00", numeric=True) is True
    assert numeric_verdict("18", "19", numeric=True) is False  # final for a numeric set
    assert numeric_verdict("18", "19", numeric=False) is None  # math-verify decides elsewhere
    assert numeric_verdict("4.2", "4.25", numeric=False, tolerance=0.1) is True  # OlympiadBench `error`
    assert numeric_verdict("4.2", "4.4", numeric=False, tolerance=0.1) is False


def test_hostile_answer_times_out_and_the_run_goes_on() -> None:
    hostile = MathRequest("5", "9^{9^{9^{9}}}")
    batch = [MathRequest("\\frac{1}{2}", "0.5"), hostile, MathRequest("x^2", "x \\cdot x"), hostile,
             MathRequest("\\sqrt{2}", "2^{1/2}")]
    with MathGrader(workers=2, timeout_s=1.0) as grader:
        start = time.monotonic()
        verdicts = grader.grade_many(batch)
        elapsed = time.monotonic() - start
        assert [v.correct for v in verdicts] == [True, False, True, False, True]
        assert [v.status for v in verdicts][1::2] == ["timeout", "timeout"]
        assert grader.timeouts == 2 and grader.restarts == 2
        assert elapsed < 15
        # The replaced workers keep grading.
        assert grader.grade(MathRequest("\\frac{2}{3}", "4/6")).correct
