"""The SQLite store: schema checks, round-trip of every field, solves, sampling, snapshots, readers."""

from __future__ import annotations

import random
import sqlite3
from collections import Counter
from pathlib import Path

import pytest
from buffer_helpers import make_task

from azr.buffer.errors import BufferNotFoundError, CorruptBufferError, NotABufferError, SchemaTooNewError
from azr.buffer.filters import TaskFilter
from azr.buffer.schema import SCHEMA_VERSION
from azr.buffer.store import TaskBuffer
from azr.tasks.record import Complexity, ValidationTrace


def test_every_field_round_trips(buffer: TaskBuffer) -> None:
    task = make_task(
        "import math\ndef f(a, b):\n    return [math.floor(a), b]",
        ["2.5, 'ü'", "1.0, 'x'", "3.5, ''", "4.0, 'y'"],
        ["[2, 'ü']", "[1, 'x']", "[3, '']", "[4, 'y']"],
        type_="induction",
        message="Floor the first, keep the second",
        imports=["import math"],
        n_shown=2,
        source="proposer",
        step=12,
        references=[4, 9],
        validation=ValidationTrace(["syntax", "execution"], {"run_seed_a": 0.01}, None, ""),
        complexity=Complexity(21, 6, 3),
    )
    result = buffer.insert(task)
    stored = buffer.get(result.id)
    task.id = result.id
    assert stored == task


def test_file_is_wal_and_versioned(tmp_path: Path) -> None:
    TaskBuffer(tmp_path / "b.db").close()
    conn = sqlite3.connect(tmp_path / "b.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert dict(conn.execute("SELECT key, value FROM meta"))["schema_version"] == str(SCHEMA_VERSION)


def test_clear_errors_for_files_that_are_not_buffers(tmp_path: Path) -> None:
    with pytest.raises(BufferNotFoundError, match="missing.db"):
        TaskBuffer(tmp_path / "missing.db", readonly=True)
    assert not (tmp_path / "missing.db").exists()  # reading never creates a file
    (tmp_path / "text.db").write_text("just some text, not a database at all" * 50)
    with pytest.raises(NotABufferError, match="not an SQLite database"):
        TaskBuffer(tmp_path / "text.db")
    other = sqlite3.connect(tmp_path / "other.db")
    other.execute("CREATE TABLE t (x)")
    other.commit()
    with pytest.raises(NotABufferError, match="without an azr meta table"):
        TaskBuffer(tmp_path / "other.db")
    TaskBuffer(tmp_path / "new.db").close()
    newer = sqlite3.connect(tmp_path / "new.db")
    newer.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),))
    newer.commit()
    with pytest.raises(SchemaTooNewError, match="upgrade azr"):
        TaskBuffer(tmp_path / "new.db", readonly=True)
    newer.execute("UPDATE meta SET value = 'x' WHERE key = 'schema_version'")
    newer.commit()
    with pytest.raises(CorruptBufferError, match="schema_version"):
        TaskBuffer(tmp_path / "new.db", readonly=True)


def test_bad_records_are_refused_with_the_field_named(buffer: TaskBuffer) -> None:
    with pytest.raises(ValueError, match="task.type"):
        buffer.insert(make_task(type_="riddle"))
    with pytest.raises(ValueError, match="task.source"):
        buffer.insert(make_task(source="web"))
    with pytest.raises(ValueError, match="exactly one input"):
        buffer.insert(make_task(inputs=["1", "2"]))
    with pytest.raises(ValueError, match="n_shown"):
        buffer.insert(make_task(type_="induction", inputs=["1", "2"], n_shown=3))
    assert len(buffer) == 0


def test_solve_history(buffer: TaskBuffer) -> None:
    a = buffer.insert(make_task(inputs=["1"])).id
    b = buffer.insert(make_task(inputs=["2"])).id
    buffer.record_solves(3, [(a, 8, 2), (b, 8, 8)])
    buffer.record_solves(3, [(a, 8, 1)])
    buffer.record_solves(4, [(a, 8, 0)])
    assert [(r.step, r.attempts, r.successes) for r in buffer.solve_history(a)] == [(3, 16, 3), (4, 8, 0)]
    assert buffer.stored(a).solve_rate == pytest.approx(3 / 24)
    assert buffer.stored(b).solve_rate == 1.0
    with pytest.raises(KeyError, match="no task with id 999"):
        buffer.record_solves(5, [(a, 1, 1), (999, 1, 0)])
    assert buffer.stored(a).attempts == 24  # the failed call changed nothing
    with pytest.raises(ValueError, match="successes <= attempts"):
        buffer.record_solves(5, [(a, 1, 2)])


def test_filters(buffer: TaskBuffer) -> None:
    ids = {}
    for i, (type_, source, step) in enumerate([("deduction", "seed", 0), ("abduction", "proposer", 5),
                                               ("deduction", "proposer", 9), ("induction", "import", 2)]):  # fmt: skip
        n = 2 if type_ == "induction" else 1
        task = make_task(f"def f(a):\n    return a + {i}", [str(j) for j in range(n)], [str(j + i) for j in range(n)],
                         type_=type_, source=source, step=step, message="Add SECRET" if i == 3 else "")  # fmt: skip
        ids[i] = buffer.insert(task).id
    buffer.record_solves(10, [(ids[1], 4, 1), (ids[2], 4, 4)])

    def found(**kw: object) -> list[int]:
        return [r.task.id for r in buffer.query(TaskFilter(**kw))]  # type: ignore[arg-type, misc]

    assert found(types=("deduction",)) == [ids[0], ids[2]]
    assert found(sources=("proposer", "import")) == [ids[1], ids[2], ids[3]]
    assert found(step_min=2, step_max=5) == [ids[1], ids[3]]
    assert found(solve_max=0.5) == [ids[1]]
    assert found(solve_min=0.5) == [ids[2]]
    assert found(text="secret") == [ids[3]]
    assert found(text="a + 2") == [ids[2]]
    assert found(text="100%") == []
    assert buffer.count(TaskFilter(types=("deduction",), step_min=1)) == 1


def test_sampling_is_uniform_within_a_type_and_reproducible(buffer: TaskBuffer) -> None:
    buffer.insert_many([make_task(f"def f(a):\n    return a - {i}", type_="deduction") for i in range(4)])
    buffer.insert_many([make_task(f"def f(a):\n    return a - {i}", type_="abduction") for i in range(50)])
    first = [t.id for t in buffer.sample("deduction", 3, random.Random(7))]
    assert first == [t.id for t in buffer.sample("deduction", 3, random.Random(7))]
    assert len(set(first)) == 3
    assert all(t.type == "deduction" for t in buffer.sample("deduction", 10, random.Random(1)))
    assert len(buffer.sample("deduction", 10, random.Random(1))) == 4  # without replacement: all there is
    assert len(buffer.sample("deduction", 10, random.Random(1), replace=True)) == 10
    assert buffer.sample("induction", 3, random.Random(1)) == []
    counts = Counter(t.id for _ in range(400) for t in buffer.sample("deduction", 1, random.Random(_)))
    assert len(counts) == 4 and min(counts.values()) > 60  # ~100 each; a biased sampler fails this


def test_snapshot_and_restore(tmp_path: Path) -> None:
    path = tmp_path / "run" / "buffer.db"
    path.parent.mkdir()
    with TaskBuffer(path) as b:
        b.insert_many([make_task(inputs=[str(i)]) for i in range(5)])
        b.record_solves(1, [(1, 8, 4)])
        b.snapshot(tmp_path / "ckpt.db")
        b.insert_many([make_task(inputs=[str(i)]) for i in range(5, 9)])
        assert len(b) == 9
    assert not (tmp_path / "ckpt.db.tmp").exists()
    with TaskBuffer(tmp_path / "ckpt.db", readonly=True) as snap:
        assert len(snap) == 5
        assert snap.connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    with TaskBuffer.restore(tmp_path / "ckpt.db", path) as restored:
        assert len(restored) == 5
        assert restored.stored(1).attempts == 8
        assert restored.connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert restored.insert(make_task(inputs=["5"])).status == "added"  # the restored file is writable


def test_reader_sees_committed_state_while_writer_is_mid_transaction(tmp_path: Path) -> None:
    with TaskBuffer(tmp_path / "b.db") as writer:
        writer.insert(make_task(inputs=["1"]))
        reader = TaskBuffer(tmp_path / "b.db", readonly=True)
        writer.connection.execute("BEGIN IMMEDIATE")
        writer.connection.execute("UPDATE tasks SET step = 99")
        assert len(reader) == 1 and reader.get(1).step == 0  # WAL: not blocked, sees the last commit
        writer.connection.execute("ROLLBACK")
        with pytest.raises(PermissionError):
            reader.insert(make_task(inputs=["2"]))
        reader.close()
