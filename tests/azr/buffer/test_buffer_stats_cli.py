"""`azr buffer list | show | sample | stats` on a real file, as tables and as JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from buffer_helpers import make_task
from typer.testing import CliRunner

from azr.buffer.cli import app
from azr.buffer.stats import buffer_stats
from azr.buffer.store import TaskBuffer

runner = CliRunner()


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A run directory whose buffer has tasks of every type and source over three steps."""
    with TaskBuffer(tmp_path / "buffer.db") as b:
        b.insert_many([make_task("def f(a):\n    return a", ["'Hello world'"], ["'Hello world'"], type_=t, source="seed")
                       for t in ("deduction", "abduction")])  # fmt: skip
        for step in (1, 2, 3):
            tasks = [make_task(f"def f(a):\n    return a * {step} + {i}", [str(i)], [str(i * step + i)], step=step,
                               type_="deduction" if i % 2 else "abduction") for i in range(step * 2)]  # fmt: skip
            b.insert_many(tasks)
            b.insert(tasks[0])  # one duplicate per step
            b.log_rejections(step, {"timeout": step, "runtime_error": 1}, task_type="deduction")
        b.insert(make_task("def f(a):\n    return sorted(a)", ["[3, 1, 2]", "[2]", "[5, 4]", "[]"],
                           ["[1, 2, 3]", "[2]", "[4, 5]", "[]"], type_="induction", message="Sort it", step=3))  # fmt: skip
        b.record_solves(3, [(1, 8, 8), (2, 8, 0), (3, 8, 4), (4, 8, 1)])
    return tmp_path


def _json(*args: str) -> dict:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_stats_figures(run_dir: Path) -> None:
    s = _json("stats", "--run", str(run_dir))
    assert s["tasks"] == 2 + 2 + 4 + 6 + 1
    assert s["by_type"] == {"deduction": 7, "abduction": 7, "induction": 1}
    assert s["by_source"] == {"seed": 2, "import": 0, "proposer": 13}
    assert s["rejections"]["by_reason"] == {"timeout": 6, "runtime_error": 3, "duplicate": 3}
    assert s["duplicates"] == 3 and s["duplicate_rate"] == round(3 / 18, 4)
    assert s["rejection_rate"] == round(9 / 27, 4)
    rates = s["solve_rate"]["all"]
    assert (rates["attempted"], rates["unattempted"], rates["never_solved"], rates["always_solved"]) == (4, 11, 1, 1)
    assert [b["count"] for b in rates["histogram"]] == [1, 1, 0, 0, 0, 1, 0, 0, 0, 1]
    assert [(g["step"], g["added"], g["duplicates"], g["rejected"], g["total"]) for g in s["growth"]] == [
        (0, 2, 0, 0, 2), (1, 2, 1, 2, 4), (2, 4, 1, 3, 8), (3, 7, 1, 4, 15)]  # fmt: skip
    assert s["complexity"]["induction"]["lines"]["max"] == 2
    assert s["solves_per_step"] == [{"step": 3, "attempts": 32, "successes": 13, "tasks": 4}]
    with TaskBuffer(run_dir / "buffer.db", readonly=True) as b:
        assert buffer_stats(b) == s


def test_stats_table_for_people(run_dir: Path) -> None:
    result = runner.invoke(app, ["stats", "--db", str(run_dir / "buffer.db")])
    assert result.exit_code == 0, result.output
    for text in ("15 tasks", "timeout", "duplicate rate 16.7%", "solve rate", "complexity", "growth per step"):
        assert text in result.output


def test_list_filters(run_dir: Path) -> None:
    db = str(run_dir / "buffer.db")
    assert _json("list", "--db", db)["total"] == 15
    assert [t["id"] for t in _json("list", "--db", db, "--type", "induction")["tasks"]] == [15]
    got = _json("list", "--db", db, "--step-min", "2", "--step-max", "2", "--source", "proposer")
    assert got["total"] == 4 and {t["step"] for t in got["tasks"]} == {2}
    assert [t["id"] for t in _json("list", "--db", db, "--solve-min", "0.4", "--solve-max", "0.6")["tasks"]] == [3]
    assert [t["id"] for t in _json("list", "--db", db, "--search", "SORTED(")["tasks"]] == [15]
    page = _json("list", "--db", db, "--limit", "3", "--offset", "2", "--newest")
    assert page["total"] == 15 and [t["id"] for t in page["tasks"]] == [13, 12, 11]
    table = runner.invoke(app, ["list", "--db", db, "--type", "induction"])
    assert table.exit_code == 0 and "1 of 1 matching tasks" in table.output and "induction" in table.output
    bad = runner.invoke(app, ["list", "--db", db, "--type", "riddle"])
    assert bad.exit_code != 0 and "'riddle' is not a task type" in bad.output


def test_show(run_dir: Path) -> None:
    db = str(run_dir / "buffer.db")
    task = _json("show", "15", "--db", db)
    assert task["message"] == "Sort it" and task["n_shown"] == 2 and task["solve_history"] == []
    assert _json("show", "3", "--db", db)["solve_history"] == [{"task_id": 3, "step": 3, "attempts": 8, "successes": 4}]
    table = runner.invoke(app, ["show", "15", "--db", db])
    assert table.exit_code == 0 and "sorted(a)" in table.output and "held out" in table.output
    missing = runner.invoke(app, ["show", "99", "--db", db])
    assert missing.exit_code != 0 and "no task with id 99" in missing.output


def test_sample_is_per_type_and_reproducible(run_dir: Path) -> None:
    db = str(run_dir / "buffer.db")
    first = _json("sample", "--db", db, "-n", "3", "--seed", "5")["tasks"]
    assert [t["type"] for t in first] == ["deduction"] * 3 + ["abduction"] * 3 + ["induction"]
    assert first == _json("sample", "--db", db, "-n", "3", "--seed", "5")["tasks"]
    only = _json("sample", "--db", db, "-n", "2", "--type", "abduction", "--step-min", "3")["tasks"]
    assert len(only) == 2 and all(t["type"] == "abduction" and t["step"] == 3 for t in only)


def test_missing_and_ambiguous_buffer_paths(tmp_path: Path) -> None:
    for args, message in (
        (["list"], "--db PATH"),
        (["list", "--db", "a.db", "--run", "."], "not both"),
        (["stats", "--run", str(tmp_path / "nowhere")], "does not exist"),
        (["stats", "--run", str(tmp_path)], "no task buffer at"),
        (["stats", "--db", str(tmp_path)], "is a directory"),
    ):
        result = runner.invoke(app, args)
        assert result.exit_code != 0 and message in result.output, (args, result.output)


def test_damaged_file_is_reported_not_a_traceback(tmp_path: Path) -> None:
    db = tmp_path / "buffer.db"
    with TaskBuffer(db) as b:
        b.insert_many([make_task(f"def f(a):\n    return a + {i}", message="m" * 2000) for i in range(300)])
        b.connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = db.stat().st_size
    with open(db, "r+b") as fh:
        fh.seek(size // 2)
        fh.write(b"\xde\xad" * 20_000)
    result = runner.invoke(app, ["stats", "--db", str(db)])
    assert result.exit_code == 1
    assert "buffer.db is damaged" in result.output and "Traceback" not in result.output
