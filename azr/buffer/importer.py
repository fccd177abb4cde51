"""Validating candidate tasks in the sandbox and storing the valid ones: the import path.

Imported rows and seeds are treated exactly like proposals: each chunk of rows is validated with the
task types' own validation plans in one batch (one ``evaluate_many``), rejected candidates are
counted by reason and never stored, and valid ones go through the buffer's dedup. The sandbox is the
source of truth for outputs; a file's own output is only a cross-check: when it is a plain literal
that differs from what the program returns, the row is rejected as ``output_mismatch``.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from azr.buffer.jsonl_io import Candidate, RowProblem, read_rows
from azr.buffer.store import DUPLICATE, TaskBuffer
from azr.tasks.arguments import parse_value
from azr.tasks.plans import Plan, run_plans
from azr.tasks.record import TASK_TYPES, Task
from azr.tasks.registry import get_task_type
from azr.tasks.validation import ValidationConfig, ValidationOutcome, program_io_plan
from sandbox import Sandbox
from sandbox.values import Value

OUTPUT_MISMATCH = "output_mismatch"
MAX_LISTED_PROBLEMS = 100
Progress = Callable[[int, int], None]  # (lines done, lines in total)


@dataclass
class ImportReport:
    """What an import did: how many tasks were added, and why every other row or task was not."""

    path: str = ""
    lines: int = 0  # non-blank lines read
    candidates: int = 0  # tasks validated (an official io row gives two)
    added: int = 0
    duplicates: int = 0
    skipped_type: int = 0  # rows whose task types were excluded by --type
    rejected: Counter[str] = field(default_factory=Counter)  # validation reason -> candidates
    malformed: Counter[str] = field(default_factory=Counter)  # line problem -> lines
    problems: list[RowProblem] = field(default_factory=list)  # the first MAX_LISTED_PROBLEMS
    added_ids: list[int] = field(default_factory=list)
    seconds: float = 0.0

    def merge_problem(self, problem: RowProblem) -> None:
        self.malformed[problem.reason] += 1
        if len(self.problems) < MAX_LISTED_PROBLEMS:
            self.problems.append(problem)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "lines": self.lines,
            "candidates": self.candidates,
            "added": self.added,
            "duplicates": self.duplicates,
            "skipped_type": self.skipped_type,
            "rejected": dict(sorted(self.rejected.items())),
            "malformed": dict(sorted(self.malformed.items())),
            "problems": [{"line": p.line, "reason": p.reason, "detail": p.detail} for p in self.problems],
            "added_ids": self.added_ids,
            "seconds": round(self.seconds, 3),
            "tasks_per_s": round(self.candidates / self.seconds, 1) if self.seconds else None,
        }


def _mismatch(task: Task, claimed: Sequence[str]) -> str | None:
    """Why the file's outputs contradict the computed ones, or None. Texts that are not plain
    literals (the official truncated outputs, ``''`` for failed runs, ``dict(a=1)``) are not claims."""
    for i, (text, computed) in enumerate(zip(claimed, task.outputs)):
        value = parse_value(text, max_chars=len(text) + 1)
        if isinstance(value, Value) and value.text != computed:
            return f"output {i + 1}: file says {text[:80]}, program returns {computed[:80]}"
    return None


def _plan(task: Task, config: ValidationConfig) -> Plan[ValidationOutcome]:
    """The registered validation plan of the task's type, except that a stored induction task keeps
    its own number of inputs and split (official files have 10 inputs, the identity seed 6) where a
    proposal must match the configured numbers."""
    if task.type == "induction":
        return program_io_plan(task, config, n_inputs=len(task.inputs), n_shown=task.n_shown, check_message=True)
    return get_task_type(task.type).validation_plan(task, config)


def validate_candidates(sb: Sandbox, tasks: Sequence[Task], config: ValidationConfig | None = None) -> list[ValidationOutcome]:
    """Like :func:`azr.tasks.validation.validate` (one ``evaluate_many`` for the batch), for stored tasks."""
    config = config or ValidationConfig()
    return run_plans(sb, [_plan(t, config) for t in tasks])


def validate_and_store(
    buffer: TaskBuffer,
    sb: Sandbox,
    candidates: Sequence[Candidate],
    report: ImportReport,
    *,
    step: int = 0,
    config: ValidationConfig | None = None,
) -> None:
    """Validate one chunk of candidates in one sandbox batch; store the valid, count the rest."""
    if not candidates:
        return
    outcomes = validate_candidates(sb, [c.task for c in candidates], config)
    report.candidates += len(candidates)
    valid: list[Task] = []
    rejected: dict[str, Counter[str]] = {t: Counter() for t in TASK_TYPES}
    for candidate, outcome in zip(candidates, outcomes):
        task = outcome.task
        if outcome.rejection is not None:
            rejected[candidate.task.type][outcome.rejection.value] += 1
            continue
        why = _mismatch(task, candidate.claimed_outputs)
        if why is not None:
            task.validation.rejection, task.validation.detail = OUTPUT_MISMATCH, why
            rejected[candidate.task.type][OUTPUT_MISMATCH] += 1
            continue
        task.source, task.step = candidate.task.source, candidate.task.step
        valid.append(task)
    for result in buffer.insert_many(valid) if valid else []:
        if result.status == DUPLICATE:
            report.duplicates += 1
        else:
            report.added += 1
            report.added_ids.append(result.id)
    source = candidates[0].task.source
    for task_type, counts in rejected.items():
        if counts:
            report.rejected.update(counts)
            buffer.log_rejections(step, counts, source=source, task_type=task_type)


def import_candidates(
    buffer: TaskBuffer,
    sb: Sandbox,
    rows: Iterable[tuple[int, list[Candidate] | RowProblem]],
    *,
    total_lines: int = 0,
    source: str = "import",
    step: int = 0,
    chunk_rows: int = 128,
    config: ValidationConfig | None = None,
    progress: Progress | None = None,
    report: ImportReport | None = None,
) -> ImportReport:
    """Validate and store parsed rows chunk by chunk (one sandbox batch and one commit per chunk)."""
    report = report or ImportReport()
    started = time.perf_counter()
    chunk: list[Candidate] = []
    problems: Counter[str] = Counter()
    rows_in_chunk = 0

    def flush() -> None:
        nonlocal chunk, rows_in_chunk, problems
        validate_and_store(buffer, sb, chunk, report, step=step, config=config)
        if problems:
            buffer.log_rejections(step, problems, source=source)
        if progress is not None:
            progress(report.lines, total_lines)
        chunk, rows_in_chunk, problems = [], 0, Counter()

    for _line, parsed in rows:
        report.lines += 1
        rows_in_chunk += 1
        if isinstance(parsed, RowProblem):
            report.merge_problem(parsed)
            problems[parsed.reason] += 1
        elif not parsed:
            report.skipped_type += 1
        else:
            chunk.extend(parsed)
        if rows_in_chunk >= chunk_rows:
            flush()
    flush()
    report.seconds += time.perf_counter() - started
    return report


def import_jsonl(
    buffer: TaskBuffer,
    path: str,
    sb: Sandbox,
    *,
    types: tuple[str, ...] = TASK_TYPES,
    source: str = "import",
    step: int = 0,
    chunk_rows: int = 128,
    config: ValidationConfig | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """Import an official-format (or our exported) JSONL file into ``buffer``."""
    try:
        with open(path, encoding="utf-8", errors="strict") as fh:
            total = sum(1 for line in fh if line.strip())
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start}): export it as UTF-8 JSONL") from None
    with open(path, encoding="utf-8") as fh:
        rows = read_rows(fh, types, source=source, step=step)
        return import_candidates(
            buffer, sb, rows, total_lines=total, source=source, step=step, chunk_rows=chunk_rows,
            config=config, progress=progress, report=ImportReport(path=str(path)),
        )  # fmt: skip
