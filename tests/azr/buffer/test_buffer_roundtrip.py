"""Export then import into a fresh database gives the same tasks."""

from __future__ import annotations

import json
from pathlib import Path

from buffer_helpers import COUNTER_PROGRAM, INDUCTION_INPUTS, STATE_PROGRAM
from typer.testing import CliRunner

from azr.buffer.cli import app
from azr.buffer.importer import validate_candidates
from azr.buffer.seeds import seed_buffer
from azr.buffer.store import TaskBuffer
from azr.tasks.record import Task
from sandbox import Sandbox

runner = CliRunner()


def _content(task: Task) -> tuple[object, ...]:
    return (task.type, task.program, task.inputs, task.outputs, task.message, task.imports, task.n_shown,
            task.complexity)  # fmt: skip


def test_export_then_import_gives_the_same_tasks(tmp_path: Path, sandbox: Sandbox) -> None:
    source_db = tmp_path / "source.db"
    candidates = [
        Task("deduction", COUNTER_PROGRAM, ["'abracadabra'"], [], source="proposer", step=3),
        Task("abduction", COUNTER_PROGRAM, ["'banana'"], [], source="proposer", step=4),
        Task("deduction", "def f(d, key='x'):\n    return {k: v * 2 for k, v in d.items() if k != key}",
             ["{'x': 1, 'y': 2.5, 'z': None}, key = 'z'"], [], source="proposer", step=4),  # fmt: skip
        Task("abduction", "def f(s):\n    return (s[::-1], len(s), {c for c in s})", ["'héllo ☃'"], [], step=5),
        Task("induction", STATE_PROGRAM, INDUCTION_INPUTS, [], message="Sliding maximum", n_shown=5, step=6),
    ]
    with TaskBuffer(source_db) as buffer:
        seed_buffer(buffer, sandbox)
        outcomes = validate_candidates(sandbox, candidates)
        assert all(o.ok for o in outcomes), [o.detail for o in outcomes]
        buffer.insert_many([o.task for o in outcomes])
        original = sorted(_content(t) for t in buffer.iter_tasks())
    assert len(original) == 8

    exported = tmp_path / "export.jsonl"
    result = runner.invoke(app, ["export", str(exported), "--db", str(source_db)])
    assert result.exit_code == 0, result.output
    assert len(exported.read_text().splitlines()) == 8

    fresh_db = tmp_path / "fresh.db"
    result = runner.invoke(app, ["import", str(exported), "--db", str(fresh_db), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["added"] == 8 and report["rejected"] == {} and report["malformed"] == {}
    with TaskBuffer(fresh_db, readonly=True) as fresh:
        assert sorted(_content(t) for t in fresh.iter_tasks()) == original

    again = tmp_path / "again.jsonl"
    assert runner.invoke(app, ["export", str(again), "--db", str(fresh_db)]).exit_code == 0
    assert sorted(again.read_text().splitlines()) == sorted(exported.read_text().splitlines())


def test_export_filters_and_stdout(tmp_path: Path, sandbox: Sandbox) -> None:
    db = tmp_path / "b.db"
    with TaskBuffer(db) as buffer:
        seed_buffer(buffer, sandbox)
    result = runner.invoke(app, ["export", "-", "--db", str(db), "--type", "induction"])
    assert result.exit_code == 0
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == 1 and rows[0]["message"] == "Write a function that returns whatever you input"
    assert rows[0]["inputs"][0] == "'Hello world'" and rows[0]["n_shown"] == 3
