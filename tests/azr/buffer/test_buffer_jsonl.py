"""Parsing official seed JSONL rows: io rows give two types, code_f rows one, bad lines a reason."""

from __future__ import annotations

import io
import json

from azr.buffer.jsonl_io import Candidate, RowProblem, export_row, parse_row, read_rows

IO_ROW = {
    "snippet": "def f(a):\n    return a",
    "input": '"Hello world"',
    "output": '"Hello world"',
    "imports": [],
    "original_snippet": "def f(a):\n    return a",
    "composite_functions": [],
    "_input_type": "str",
    "_output_type": "str",
}
CODE_F_ROW = {
    "snippet": "def f(a):\n    return a",
    "inputs": ['"Hello world"', "1", "(1.1, 1.2, 1.3)", "[1]"],
    "outputs": ['"Hello world"', "1", "(1.1, 1.2, 1.3)", "[1]"],
    "message": "Write a function that returns whatever you input",
    "imports": [],
    "_input_types": ["str", "int", "tuple", "list"],
}


def _parse(row: object, **kw: object) -> list[Candidate] | RowProblem:
    return parse_row(3, json.dumps(row), **kw)  # type: ignore[arg-type]


def test_io_row_gives_deduction_and_abduction() -> None:
    cands = _parse(IO_ROW)
    assert isinstance(cands, list)
    assert [c.task.type for c in cands] == ["deduction", "abduction"]
    assert all(c.task.inputs == ['"Hello world"'] and c.claimed_outputs == ('"Hello world"',) for c in cands)
    assert all(c.task.outputs == [] and c.task.source == "import" and c.line == 3 for c in cands)
    only = _parse(IO_ROW, types=("abduction",))
    assert isinstance(only, list) and [c.task.type for c in only] == ["abduction"]
    assert _parse(IO_ROW, types=("induction",)) == []


def test_code_f_row_gives_induction_showing_half() -> None:
    cands = _parse(CODE_F_ROW)
    assert isinstance(cands, list) and len(cands) == 1
    task = cands[0].task
    assert task.type == "induction" and task.n_shown == 2 and task.message.startswith("Write")
    assert _parse(CODE_F_ROW, types=("deduction",)) == []


def test_listed_imports_missing_from_the_snippet_are_prepended() -> None:
    row = dict(IO_ROW, snippet="def f(a):\n    return Counter(a)", imports=["from collections import Counter"])
    cands = _parse(row)
    assert isinstance(cands, list)
    assert cands[0].task.program == "from collections import Counter\ndef f(a):\n    return Counter(a)"
    row = dict(IO_ROW, snippet="import math\ndef f(a):\n    return a", imports=["import math"])
    cands = _parse(row)
    assert isinstance(cands, list) and cands[0].task.program == row["snippet"]


def test_bad_lines_are_reasons_not_exceptions() -> None:
    cases = {
        "{not json": "bad_json",
        "[1, 2]": "not_an_object",
        json.dumps({"input": "1", "output": "1"}): "missing_field",
        json.dumps({"snippet": "def f(a):\n    return a", "input": "1"}): "missing_field",
        json.dumps(dict(IO_ROW, input=5)): "bad_field",
        json.dumps(dict(IO_ROW, imports="import math")): "bad_field",
        json.dumps(dict(CODE_F_ROW, outputs=["1"])): "bad_field",
        json.dumps(dict(CODE_F_ROW, n_shown=0)): "bad_field",
        json.dumps(dict(IO_ROW, task_type="riddle")): "bad_field",
        json.dumps({"snippet": "def f(a):\n    return a"}): "unknown_row_kind",
    }
    for text, reason in cases.items():
        problem = parse_row(11, text)
        assert isinstance(problem, RowProblem), text
        assert (problem.line, problem.reason) == (11, reason), text
        assert problem.detail


def test_read_rows_numbers_lines_and_skips_blank_ones() -> None:
    text = json.dumps(IO_ROW) + "\n\n{bad\n" + json.dumps(CODE_F_ROW) + "\n"
    rows = list(read_rows(io.StringIO(text)))
    assert [line for line, _ in rows] == [1, 3, 4]
    assert isinstance(rows[1][1], RowProblem) and rows[1][1].line == 3


def test_export_rows_are_official_rows_with_our_type() -> None:
    cands = _parse(CODE_F_ROW)
    assert isinstance(cands, list)
    task = cands[0].task
    task.outputs = list(CODE_F_ROW["outputs"])  # type: ignore[arg-type]
    row = export_row(task)
    assert {k: row[k] for k in ("snippet", "inputs", "outputs", "message", "imports")} == {
        k: CODE_F_ROW[k] for k in ("snippet", "inputs", "outputs", "message", "imports")
    }
    assert row["task_type"] == "induction" and row["n_shown"] == 2
    back = parse_row(1, json.dumps(row))
    assert isinstance(back, list) and back[0].claimed_outputs == tuple(task.outputs)
    back[0].task.outputs = task.outputs
    assert back[0].task == task
    dedu = _parse(IO_ROW)[0].task  # type: ignore[index]
    dedu.outputs = ["'Hello world'"]
    row = export_row(dedu)
    assert set(row) >= {"snippet", "input", "output", "imports", "original_snippet", "composite_functions"}
    again = parse_row(1, json.dumps(row))
    assert isinstance(again, list) and [c.task.type for c in again] == ["deduction"]  # task_type honoured
