"""Reading and writing tasks in the official Absolute Zero seed JSONL formats.

Official files come in two kinds and do not say which task type a row is:
  * io rows (``*_seed_io.jsonl``): ``snippet``, ``input``, ``output``, ``imports`` (plus extras such
    as ``original_snippet``, ``composite_functions``, ``_input_type``, which are ignored). The
    official code seeds both the deduction and the abduction buffer from one such file, so an io
    row gives a deduction and an abduction candidate.
  * code_f rows (``*_code_f_seed_io.jsonl``): ``snippet``, ``inputs``, ``outputs``, ``message``,
    ``imports``; an induction candidate, of which the first half of the pairs are shown.
Our export writes the same fields plus ``task_type`` (and ``n_shown`` for induction), which the
official loaders ignore and our import honours, so export followed by import gives the same tasks.
Parsing never raises on a bad line: it returns a :class:`RowProblem` naming the line and reason.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from azr.tasks.record import TASK_TYPES, Task

IO_TYPES = ("deduction", "abduction")
MAX_LINE_CHARS = 1_000_000


@dataclass(frozen=True)
class RowProblem:
    """A line that could not be read as a row: ``reason`` is a short code, ``detail`` says more."""

    line: int
    reason: str  # bad_json | not_an_object | missing_field | bad_field | unknown_row_kind | line_too_long
    detail: str


@dataclass(frozen=True)
class Candidate:
    """A task read from a file, before validation. ``claimed_outputs`` are the file's outputs."""

    line: int
    task: Task
    claimed_outputs: tuple[str, ...]


def _field(row: dict[str, Any], name: str, kind: type, line: int, required: bool = True) -> Any:
    if name not in row:
        if required:
            raise _Bad(RowProblem(line, "missing_field", f"field {name!r} is missing"))
        return kind()
    value = row[name]
    if kind is list:
        if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
            raise _Bad(RowProblem(line, "bad_field", f"field {name!r} must be a list of strings"))
    elif not isinstance(value, kind) or isinstance(value, bool):
        raise _Bad(RowProblem(line, "bad_field", f"field {name!r} must be {kind.__name__}, not {type(value).__name__}"))
    return value


class _Bad(Exception):
    def __init__(self, problem: RowProblem) -> None:
        self.problem = problem


def _program(snippet: str, imports: list[str]) -> str:
    """The snippet with any import listed in ``imports`` but missing from it prepended, as the
    official executor prepends the imports list before running a snippet."""
    present = {line.strip() for line in snippet.splitlines()}
    missing = [imp.strip() for imp in imports if imp.strip() and imp.strip() not in present]
    return "\n".join([*missing, snippet]) if missing else snippet


def parse_row(line_no: int, text: str, types: tuple[str, ...] = TASK_TYPES, *, source: str = "import",
              step: int = 0) -> list[Candidate] | RowProblem:  # fmt: skip
    """Candidates for one line (zero when ``types`` excludes the row's types), or its problem."""
    if len(text) > MAX_LINE_CHARS:
        return RowProblem(line_no, "line_too_long", f"line has {len(text)} characters (limit {MAX_LINE_CHARS})")
    try:
        row = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        return RowProblem(line_no, "bad_json", str(exc)[:200])
    if not isinstance(row, dict):
        return RowProblem(line_no, "not_an_object", f"a row must be a JSON object, not {type(row).__name__}")
    try:
        return _candidates(row, line_no, types, source, step)
    except _Bad as bad:
        return bad.problem


def _candidates(row: dict[str, Any], line: int, types: tuple[str, ...], source: str, step: int) -> list[Candidate]:
    snippet = _field(row, "snippet", str, line)
    imports = _field(row, "imports", list, line, required=False)
    declared = row.get("task_type")
    if declared is not None and declared not in TASK_TYPES:
        raise _Bad(RowProblem(line, "bad_field", f"task_type {declared!r} is not one of {', '.join(TASK_TYPES)}"))
    program = _program(snippet, imports)
    if "inputs" in row:
        inputs = _field(row, "inputs", list, line)
        outputs = _field(row, "outputs", list, line)
        message = _field(row, "message", str, line, required=False)
        if not inputs or len(inputs) != len(outputs):
            raise _Bad(RowProblem(line, "bad_field", f"{len(inputs)} inputs and {len(outputs)} outputs"))
        if declared not in (None, "induction"):
            raise _Bad(RowProblem(line, "bad_field", f"task_type {declared!r} on a row with 'inputs'"))
        n_shown = row.get("n_shown", max(1, len(inputs) // 2))
        if not isinstance(n_shown, int) or isinstance(n_shown, bool) or not 1 <= n_shown <= len(inputs):
            raise _Bad(RowProblem(line, "bad_field", f"n_shown must be an int in 1..{len(inputs)}"))
        if "induction" not in types:
            return []
        task = Task("induction", program, list(inputs), [], message, list(imports), n_shown, source, step)
        return [Candidate(line, task, tuple(outputs))]
    if "input" in row:
        input_text = _field(row, "input", str, line)
        output = _field(row, "output", str, line)
        if declared == "induction":
            raise _Bad(RowProblem(line, "bad_field", "task_type 'induction' on a row with 'input'"))
        wanted = [t for t in ((declared,) if declared else IO_TYPES) if t in types]
        return [
            Candidate(line, Task(t, program, [input_text], [], "", list(imports), 1, source, step), (output,))
            for t in wanted
        ]
    raise _Bad(RowProblem(line, "unknown_row_kind", "a row needs 'input' (deduction/abduction) or 'inputs' (induction)"))


def read_rows(fh: IO[str], types: tuple[str, ...] = TASK_TYPES, *, source: str = "import",
              step: int = 0) -> Iterator[tuple[int, list[Candidate] | RowProblem]]:  # fmt: skip
    """Each non-blank line as (line number, candidates or problem)."""
    for line_no, text in enumerate(fh, start=1):
        if text.strip():
            yield line_no, parse_row(line_no, text, types, source=source, step=step)


def export_row(task: Task) -> dict[str, Any]:
    """One task as an official-format row (plus ``task_type``/``n_shown``, ignored by the official code)."""
    if task.type == "induction":
        return {
            "snippet": task.program,
            "inputs": list(task.inputs),
            "outputs": list(task.outputs),
            "message": task.message,
            "imports": list(task.imports),
            "task_type": task.type,
            "n_shown": task.n_shown,
        }
    return {
        "snippet": task.program,
        "input": task.inputs[0],
        "output": task.outputs[0],
        "imports": list(task.imports),
        "original_snippet": task.program,
        "composite_functions": [],
        "task_type": task.type,
    }


def write_rows(fh: IO[str], tasks: Iterator[Task] | list[Task]) -> int:
    """Write tasks as JSONL; returns the number of rows written."""
    n = 0
    for task in tasks:
        fh.write(json.dumps(export_row(task), ensure_ascii=False) + "\n")
        n += 1
    return n
