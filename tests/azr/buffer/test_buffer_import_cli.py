"""`azr buffer import` on an official-format file, through the CLI, with the real sandbox."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pytest
from buffer_helpers import official_seed_lines
from typer.testing import CliRunner

from azr.buffer.cli import app
from azr.buffer.store import TaskBuffer

runner = CliRunner()


@pytest.fixture(scope="module")
def seed_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("seed") / "seed_io.jsonl"
    path.write_text("\n".join(official_seed_lines()[0]) + "\n")
    return path


def _import(*args: str) -> str:
    result = runner.invoke(app, ["import", *args, "--timeout", "1.0"])
    assert result.exit_code == 0, result.output
    return result.output


def test_import_validates_every_row_and_is_idempotent(seed_file: Path, tmp_path: Path) -> None:
    _lines, rejected, malformed, added = official_seed_lines()
    db = tmp_path / "run.db"

    out = _import(str(seed_file), "--db", str(db), "--no-progress")
    assert re.search(rf"added\s*│\s*{added}\b", out), out
    for reason, n in rejected.items():
        assert re.search(rf"rejected: {reason}\s*│\s*{n}\b", out), (reason, out)
    for reason, n in malformed.items():
        assert re.search(rf"malformed line: {reason}\s*│\s*{n}\b", out), (reason, out)
    assert "line 4: bad_json" in out and "line 7: missing_field" in out

    with TaskBuffer(db, readonly=True) as buffer:
        tasks = list(buffer.iter_tasks())
        assert len(tasks) == added
        assert sorted(t.type for t in tasks) == ["abduction"] * 3 + ["deduction"] * 3 + ["induction"]
        assert all(t.source == "import" and "execution" in t.validation.checks for t in tasks)
        by_program = {(t.program, t.type): t for t in tasks}
        # Outputs come from the sandbox in canonical form, not from the file.
        assert by_program[("def f(a):\n    return a", "deduction")].outputs == ["'Hello world'"]
        assert by_program[("def f(n):\n    return list(range(n))", "abduction")].outputs == [str(list(range(150)))]
        induction = next(t for t in tasks if t.type == "induction")
        assert induction.n_shown == 5 and len(induction.inputs) == 10
        logged = dict(buffer.connection.execute(
            "SELECT reason, SUM(count) FROM rejections WHERE source = 'import' GROUP BY reason").fetchall())  # fmt: skip
    assert logged == rejected | malformed

    again = json.loads(_import(str(seed_file), "--db", str(db), "--json"))
    assert again["added"] == 0
    assert again["duplicates"] == added
    assert again["rejected"] == rejected and again["malformed"] == malformed
    assert again["candidates"] == added + sum(rejected.values())
    assert len(TaskBuffer(db, readonly=True)) == added


def test_import_type_restriction(seed_file: Path, tmp_path: Path) -> None:
    report = json.loads(_import(str(seed_file), "--run", str(tmp_path), "--type", "induction", "--json"))
    assert report["added"] == 1 and report["rejected"] == {"constant_outputs": 1}
    assert report["skipped_type"] == 9  # the io rows
    with TaskBuffer(tmp_path / "buffer.db", readonly=True) as buffer:
        assert [t.type for t in buffer.iter_tasks()] == ["induction"]


def test_import_errors_name_the_file_and_exit_nonzero(seed_file: Path, tmp_path: Path) -> None:
    missing = runner.invoke(app, ["import", str(tmp_path / "nope.jsonl"), "--db", str(tmp_path / "b.db")])
    assert missing.exit_code != 0 and "nope.jsonl: no such file" in missing.output
    assert not (tmp_path / "b.db").exists()
    corrupt = tmp_path / "corrupt.db"
    corrupt.write_bytes(b"\x00garbage" * 200)
    bad_db = runner.invoke(app, ["import", str(seed_file), "--db", str(corrupt)])
    assert bad_db.exit_code != 0 and "corrupt.db is not an azr task buffer" in bad_db.output
    foreign = tmp_path / "foreign.db"
    sqlite3.connect(foreign).execute("CREATE TABLE x (y)")
    assert "foreign.db is not an azr task buffer" in runner.invoke(app, ["list", "--db", str(foreign)]).output
    binary = tmp_path / "binary.jsonl"
    binary.write_bytes(b"\xff\xfe\x00 not utf-8")
    result = runner.invoke(app, ["import", str(binary), "--db", str(tmp_path / "c.db")])
    assert result.exit_code != 0 and "binary.jsonl is not UTF-8" in result.output
