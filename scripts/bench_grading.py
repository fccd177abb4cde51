"""Grading throughput: math (gold replay over MATH500) and code (HumanEval canonical solutions, sandboxed).

    PYTHONPATH=. python scripts/bench_grading.py [--workers 2] [--data-dir ../shared/benchmarks]

Prints items/s for each stage. Math runs twice: gold answers (many settle as plain numbers without
sympy) and changed answers (+1, which mostly go through math-verify), so both paths are measured.
Worker start-up is excluded (a warm-up batch runs first).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from azr.eval.code_grader import CodeGrader
from azr.eval.data import load_humaneval, load_math
from azr.eval.math_equiv import parse_number
from azr.eval.math_grader import MathGrader, MathRequest
from azr.eval.runner import grade_math


def _changed(answer: str) -> str:
    number = parse_number(answer)
    return str(number + 1) if number is not None else answer + "+1"


def bench_math(workers: int, data_dir: Path | None) -> None:
    items = load_math("math500", data_dir)
    with MathGrader(workers=workers) as grader:
        grader.grade_many([MathRequest("x^2", "x \\cdot x")] * workers)  # start the workers
        for label, make in (("gold", lambda a: a), ("changed", _changed)):
            responses = [[f"The answer is \\boxed{{{make(item.answer)}}}"] for item in items]
            start = time.perf_counter()
            graded = grade_math(items, responses, grader)
            seconds = time.perf_counter() - start
            correct = sum(it.samples[0].correct for it in graded)
            print(f"math500 {label:8s}: {len(items)} items in {seconds:6.2f} s = {len(items) / seconds:8.1f} items/s "
                  f"({correct} graded correct, {grader.timeouts} timeouts so far)")


def bench_code(workers: int) -> None:
    items = load_humaneval()
    responses = [f"```python\n{item.canonical_solution}\n```" for item in items]
    with CodeGrader(workers=workers) as grader:
        grader.grade_many(items[:workers], responses[:workers])  # start the sandbox workers
        start = time.perf_counter()
        verdicts = grader.grade_many(items, responses)
        seconds = time.perf_counter() - start
    print(f"humaneval canonical: {len(items)} items in {seconds:6.2f} s = {len(items) / seconds:8.1f} items/s "
          f"({sum(v.correct for v in verdicts)} passed)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--data-dir", type=Path, default=None)
    args = parser.parse_args()
    bench_math(args.workers, args.data_dir)
    bench_code(args.workers)


if __name__ == "__main__":
    main()
