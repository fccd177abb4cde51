"""One benchmark end to end: items -> prompts -> responses -> grades -> metrics.

Generation and grading are separate steps so ``azr eval grade`` can grade responses produced
elsewhere (vLLM, an API) through exactly the same path as ``azr eval math|code``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from azr.eval.code_grader import CodeGrader
from azr.eval.data import CodeItem, MathItem
from azr.eval.extract import extract_code, extract_math_answer
from azr.eval.math_grader import MathGrader, MathRequest
from azr.eval.metrics import Metric, summarize
from azr.eval.prompts import instruction, render

Progress = Callable[[int], None]


@dataclass
class SampleResult:
    response: str
    extracted: str | None  # the math answer or the program that was run; None when there was none
    correct: bool
    status: str
    detail: str = ""


@dataclass
class ItemResult:
    index: int  # row position in the benchmark file
    id: str
    gold: str | None  # math gold answer (None for code)
    samples: list[SampleResult]


@dataclass
class BenchmarkResult:
    benchmark: str
    kind: str  # "math" | "code"
    metrics: dict[str, Metric | float]
    items: list[ItemResult]
    config: dict[str, Any] = field(default_factory=dict)
    excluded: list[dict[str, str]] = field(default_factory=list)  # items no answer can pass, with reasons
    seconds: dict[str, float] = field(default_factory=dict)


def prompts_for(items: Sequence[MathItem | CodeItem], tokenizer: Any, template: str) -> list[str]:
    return [render(instruction(item), tokenizer, template) for item in items]


def _flatten(items: Sequence[Any], responses: Sequence[Sequence[str]]) -> tuple[list[Any], list[str]]:
    if len(items) != len(responses):
        raise ValueError(f"{len(items)} items but {len(responses)} response lists")
    flat_items = [item for item, rs in zip(items, responses) for _ in rs]
    flat_responses = [r for rs in responses for r in rs]
    return flat_items, flat_responses


def _regroup(items: Sequence[Any], responses: Sequence[Sequence[str]], samples: list[SampleResult],
             gold: Callable[[Any], str | None]) -> list[ItemResult]:
    out, at = [], 0
    for item, rs in zip(items, responses):
        out.append(ItemResult(item.index, item.id, gold(item), samples[at : at + len(rs)]))
        at += len(rs)
    return out


def grade_math(items: Sequence[MathItem], responses: Sequence[Sequence[str]], grader: MathGrader,
               on_done: Progress | None = None) -> list[ItemResult]:
    flat_items, flat_responses = _flatten(items, responses)
    answers = [extract_math_answer(r) for r in flat_responses]
    requests = [MathRequest(it.answer, a, it.numeric, it.tolerance) for it, a in zip(flat_items, answers)]
    verdicts = grader.grade_many(requests, on_done)
    samples = [SampleResult(r, a, v.correct, v.status) for r, a, v in zip(flat_responses, answers, verdicts)]
    return _regroup(items, responses, samples, lambda it: it.answer)


def grade_code(items: Sequence[CodeItem], responses: Sequence[Sequence[str]], grader: CodeGrader,
               on_done: Progress | None = None) -> list[ItemResult]:
    flat_items, flat_responses = _flatten(items, responses)
    verdicts = grader.grade_many(flat_items, flat_responses, on_done)
    samples = [
        SampleResult(r, extract_code(r, it.entry_point), v.correct, v.status, v.detail)
        for it, r, v in zip(flat_items, flat_responses, verdicts)
    ]
    return _regroup(items, responses, samples, lambda it: None)


def build_result(benchmark: str, kind: str, graded: list[ItemResult], greedy: bool,
                 config: dict[str, Any] | None = None, seconds: dict[str, float] | None = None) -> BenchmarkResult:
    """Metrics over the gradable items; items whose reference could not be computed (a canonical
    solution that fails in the sandbox) are set aside and listed, not counted as wrong."""
    excluded = [
        {"index": str(it.index), "id": it.id, "reason": it.samples[0].detail}
        for it in graded if it.samples and all(s.status == "reference_error" for s in it.samples)
    ]
    kept = [it for it in graded if it.samples and not all(s.status == "reference_error" for s in it.samples)]
    metrics = summarize([[s.correct for s in it.samples] for it in kept], greedy)
    return BenchmarkResult(benchmark, kind, metrics, graded, dict(config or {}), excluded, dict(seconds or {}))


def grade_benchmark(benchmark: str, items: Sequence[MathItem | CodeItem], responses: Sequence[Sequence[str]],
                    greedy: bool, math_grader: MathGrader | None = None, code_grader: CodeGrader | None = None,
                    config: dict[str, Any] | None = None, on_done: Progress | None = None,
                    seconds: dict[str, float] | None = None) -> BenchmarkResult:
    if not items:
        raise ValueError(f"grade_benchmark: no {benchmark} items to grade")
    start = time.perf_counter()
    if isinstance(items[0], MathItem):
        if math_grader is None:
            raise ValueError("grade_benchmark: a math benchmark needs a MathGrader")
        graded = grade_math(items, responses, math_grader, on_done)  # type: ignore[arg-type]
        kind = "math"
    else:
        if code_grader is None:
            raise ValueError("grade_benchmark: a code benchmark needs a CodeGrader")
        graded = grade_code(items, responses, code_grader, on_done)  # type: ignore[arg-type]
        kind = "code"
    timing = {**(seconds or {}), "grading": time.perf_counter() - start}
    return build_result(benchmark, kind, graded, greedy, config, timing)
