"""The persistent task buffer: validated tasks, their solve history and the rejection log.

One SQLite file per run (see :mod:`azr.buffer.schema`). Every write method is one transaction, so
a writer killed at any moment leaves the file as of its last commit. The file is opened with
``synchronous=FULL`` by default: a commit is on disk when the method returns, which holds across
power loss too; ``durable=False`` (``synchronous=NORMAL``) still survives a killed process and
saves one fsync per commit. Readers (the CLI) open the file read-only while training writes to it.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Literal

from azr.buffer.dedup import dedup_key
from azr.buffer.filters import TaskFilter
from azr.buffer.schema import connect
from azr.tasks.record import SOURCES, TASK_TYPES, Complexity, SolveRecord, Task, ValidationTrace

DUPLICATE = "duplicate"

_COLUMNS = (
    "type, program, inputs, outputs, message, imports, n_shown, source, step, reference_ids, validation, "
    "ast_nodes, ast_depth, lines, dedup_key, created_at"
)
_SELECT = "SELECT id, " + _COLUMNS + ", attempts, successes FROM tasks"


@dataclass(frozen=True)
class InsertResult:
    """``status`` "added" with the new id, or "duplicate" with the id of the task already stored."""

    status: Literal["added", "duplicate"]
    id: int


@dataclass(frozen=True)
class StoredTask:
    """A task as the buffer holds it: the record plus its solve totals and insertion time."""

    task: Task
    attempts: int
    successes: int
    created_at: float

    @property
    def solve_rate(self) -> float | None:
        return self.successes / self.attempts if self.attempts else None


def check_task(task: Task) -> None:
    """Refuse a record the rest of the system could not use; the message names the field."""
    if task.type not in TASK_TYPES:
        raise ValueError(f"task.type is {task.type!r}; expected one of {', '.join(TASK_TYPES)}")
    if task.source not in SOURCES:
        raise ValueError(f"task.source is {task.source!r}; expected one of {', '.join(SOURCES)}")
    if not isinstance(task.program, str) or not task.program.strip():
        raise ValueError("task.program is empty")
    if len(task.inputs) != len(task.outputs) or not task.inputs:
        raise ValueError(
            f"task.inputs ({len(task.inputs)}) and task.outputs ({len(task.outputs)}) must be non-empty and of equal length"
        )
    if task.type != "induction" and len(task.inputs) != 1:
        raise ValueError(f"a {task.type} task has exactly one input, this one has {len(task.inputs)}")
    if not 1 <= task.n_shown <= len(task.inputs):
        raise ValueError(f"task.n_shown is {task.n_shown}; expected 1..{len(task.inputs)}")
    for name in ("inputs", "outputs", "imports"):
        if not all(isinstance(x, str) for x in getattr(task, name)):
            raise ValueError(f"task.{name} must be a list of str")


def task_key(task: Task) -> str:
    """The dedup key of a task (type, normalised program, canonical inputs)."""
    return dedup_key(task.type, task.program, task.inputs)


def _row_values(task: Task, key: str, now: float) -> tuple[object, ...]:
    return (
        task.type,
        task.program,
        json.dumps(task.inputs, ensure_ascii=False),
        json.dumps(task.outputs, ensure_ascii=False),
        task.message,
        json.dumps(task.imports, ensure_ascii=False),
        task.n_shown,
        task.source,
        task.step,
        json.dumps(task.references),
        json.dumps(asdict(task.validation), ensure_ascii=False),
        task.complexity.ast_nodes,
        task.complexity.ast_depth,
        task.complexity.lines,
        key,
        now,
    )


def _stored(row: Sequence[object]) -> StoredTask:
    (id_, type_, program, inputs, outputs, message, imports, n_shown, source, step, refs, validation,
     nodes, depth, lines, _key, created_at, attempts, successes) = row  # fmt: skip
    task = Task(
        type=str(type_),
        program=str(program),
        inputs=json.loads(str(inputs)),
        outputs=json.loads(str(outputs)),
        message=str(message),
        imports=json.loads(str(imports)),
        n_shown=int(n_shown),  # type: ignore[call-overload]
        source=str(source),
        step=int(step),  # type: ignore[call-overload]
        references=json.loads(str(refs)),
        validation=ValidationTrace(**json.loads(str(validation))),
        complexity=Complexity(int(nodes), int(depth), int(lines)),  # type: ignore[call-overload]
        id=int(id_),  # type: ignore[call-overload]
    )
    return StoredTask(task, int(attempts), int(successes), float(created_at))  # type: ignore[call-overload, arg-type]


class TaskBuffer:
    """A run's task buffer on disk. Use as a context manager or call :meth:`close`."""

    def __init__(self, path: str | os.PathLike[str], *, readonly: bool = False, create: bool = True,
                 durable: bool = True) -> None:  # fmt: skip
        self.path = os.fspath(path)
        self.readonly = readonly
        self._conn = connect(self.path, readonly=readonly, create=create and not readonly, durable=durable)

    # -- lifecycle ---------------------------------------------------------------------------------

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> TaskBuffer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def connection(self) -> sqlite3.Connection:
        """The underlying connection, for read-only reporting queries (see :mod:`azr.buffer.stats`)."""
        return self._conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        if self.readonly:
            raise PermissionError(f"{self.path} is open read-only")
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    @contextmanager
    def read_snapshot(self) -> Iterator[None]:
        """Hold one read transaction so several queries see the same state (e.g. a whole export)."""
        if self._conn.in_transaction:
            yield
            return
        self._conn.execute("BEGIN")
        try:
            yield
        finally:
            self._conn.execute("COMMIT")

    # -- writing -----------------------------------------------------------------------------------

    def insert(self, task: Task, *, count_duplicate: bool = True) -> InsertResult:
        return self.insert_many([task], count_duplicates=count_duplicate)[0]

    def insert_many(self, tasks: Iterable[Task], *, count_duplicates: bool = True) -> list[InsertResult]:
        """Store tasks in one transaction; a task equal to a stored one (or an earlier one in the
        batch) is not stored and comes back as "duplicate". Duplicates are counted in the rejection
        log under reason "duplicate" (unless ``count_duplicates`` is False) so stats can report
        the duplicate rate."""
        tasks = list(tasks)
        for task in tasks:
            check_task(task)
        keyed = [(task, task_key(task)) for task in tasks]
        results: list[InsertResult] = []
        duplicates: dict[tuple[int, str, str], int] = {}
        now = time.time()
        with self._write() as conn:
            for task, key in keyed:
                row = conn.execute(
                    f"INSERT INTO tasks ({_COLUMNS}) VALUES ({', '.join('?' * 16)}) "
                    "ON CONFLICT (dedup_key) DO NOTHING RETURNING id",
                    _row_values(task, key, now),
                ).fetchone()
                if row is not None:
                    results.append(InsertResult("added", int(row[0])))
                    continue
                existing = conn.execute("SELECT id FROM tasks WHERE dedup_key = ?", (key,)).fetchone()
                results.append(InsertResult(DUPLICATE, int(existing[0])))
                where = (task.step, task.type, task.source)
                duplicates[where] = duplicates.get(where, 0) + 1
            if count_duplicates:
                for (step, type_, source), n in duplicates.items():
                    self._add_rejections(conn, step, type_, source, {DUPLICATE: n})
        return results

    def record_solves(self, step: int, solves: Iterable[tuple[int, int, int]]) -> None:
        """Add ``(task_id, attempts, successes)`` of one step to the solve history (one transaction)."""
        items = [(int(t), int(a), int(s)) for t, a, s in solves]
        for task_id, attempts, successes in items:
            if attempts < 0 or not 0 <= successes <= attempts:
                raise ValueError(f"task {task_id}: need 0 <= successes <= attempts, got {successes}/{attempts}")
        with self._write() as conn:
            for task_id, attempts, successes in items:
                updated = conn.execute(
                    "UPDATE tasks SET attempts = attempts + ?, successes = successes + ? WHERE id = ?",
                    (attempts, successes, task_id),
                ).rowcount
                if not updated:
                    raise KeyError(f"record_solves: no task with id {task_id} in {self.path}")
                conn.execute(
                    "INSERT INTO solves (task_id, step, attempts, successes) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (task_id, step) DO UPDATE SET attempts = attempts + excluded.attempts, "
                    "successes = successes + excluded.successes",
                    (task_id, step, attempts, successes),
                )

    def log_rejections(self, step: int, counts: Mapping[str, int], *, source: str = "proposer",
                       task_type: str = "") -> None:  # fmt: skip
        """Add rejection counts per reason (``{"timeout": 3, ...}``) for one step, type and source."""
        if source not in SOURCES:
            raise ValueError(f"source is {source!r}; expected one of {', '.join(SOURCES)}")
        if task_type and task_type not in TASK_TYPES:
            raise ValueError(f"task_type is {task_type!r}; expected one of {', '.join(TASK_TYPES)} or ''")
        with self._write() as conn:
            self._add_rejections(conn, step, task_type, source, counts)

    @staticmethod
    def _add_rejections(conn: sqlite3.Connection, step: int, task_type: str, source: str,
                        counts: Mapping[str, int]) -> None:  # fmt: skip
        conn.executemany(
            "INSERT INTO rejections (step, type, source, reason, count) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (step, type, source, reason) DO UPDATE SET count = count + excluded.count",
            [(step, task_type, source, str(reason), int(n)) for reason, n in counts.items() if n],
        )

    # -- reading -----------------------------------------------------------------------------------

    def __len__(self) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM tasks").fetchone()[0])

    def count(self, filt: TaskFilter | None = None) -> int:
        where, params = (filt or TaskFilter()).where()
        return int(self._conn.execute(f"SELECT COUNT(*) FROM tasks WHERE {where}", params).fetchone()[0])

    def count_type(self, task_type: str) -> int:
        """Tasks of one type (the trainer asks every step)."""
        return self.count(TaskFilter(types=(task_type,)))

    def stored(self, task_id: int) -> StoredTask:
        row = self._conn.execute(f"{_SELECT} WHERE id = ?", (task_id,)).fetchone()
        if row is None:
            raise KeyError(f"no task with id {task_id} in {self.path}")
        return _stored(row)

    def get(self, task_id: int) -> Task:
        return self.stored(task_id).task

    def find(self, task: Task) -> int | None:
        """The id of the stored task that ``task`` duplicates, if any (e.g. to skip validating it)."""
        row = self._conn.execute("SELECT id FROM tasks WHERE dedup_key = ?", (task_key(task),)).fetchone()
        return int(row[0]) if row else None

    def query(self, filt: TaskFilter | None = None, *, limit: int | None = None, offset: int = 0,
              newest_first: bool = False) -> list[StoredTask]:  # fmt: skip
        where, params = (filt or TaskFilter()).where()
        order = "DESC" if newest_first else "ASC"
        sql = f"{_SELECT} WHERE {where} ORDER BY id {order} LIMIT ? OFFSET ?"
        rows = self._conn.execute(sql, [*params, -1 if limit is None else limit, offset]).fetchall()
        return [_stored(r) for r in rows]

    def iter_tasks(self, filt: TaskFilter | None = None, batch: int = 1000) -> Iterator[Task]:
        """All matching tasks in id order, fetched in batches (use inside :meth:`read_snapshot`)."""
        where, params = (filt or TaskFilter()).where()
        last = 0
        while True:
            rows = self._conn.execute(
                f"{_SELECT} WHERE id > ? AND {where} ORDER BY id LIMIT ?", [last, *params, batch]
            ).fetchall()
            if not rows:
                return
            for row in rows:
                yield _stored(row).task
            last = int(rows[-1][0])

    def solve_history(self, task_id: int) -> list[SolveRecord]:
        rows = self._conn.execute(
            "SELECT task_id, step, attempts, successes FROM solves WHERE task_id = ? ORDER BY step", (task_id,)
        ).fetchall()
        return [SolveRecord(*map(int, r)) for r in rows]

    def sample(self, task_type: str, n: int, rng: random.Random, *, replace: bool = False,
               filt: TaskFilter | None = None) -> list[Task]:  # fmt: skip
        """``n`` tasks of one type drawn uniformly with ``rng`` (reproducible for a given seed and
        buffer content). Without replacement it returns fewer when the type has fewer tasks."""
        if task_type not in TASK_TYPES:
            raise ValueError(f"task_type is {task_type!r}; expected one of {', '.join(TASK_TYPES)}")
        where, params = (filt or TaskFilter()).where()
        with self.read_snapshot():
            ids = [r[0] for r in self._conn.execute(
                f"SELECT id FROM tasks WHERE type = ? AND {where} ORDER BY id", [task_type, *params])]  # fmt: skip
            if not ids or n <= 0:
                return []
            chosen = rng.choices(ids, k=n) if replace else rng.sample(ids, min(n, len(ids)))
            by_id = {}
            for start in range(0, len(chosen), 500):
                part = sorted(set(chosen[start : start + 500]))
                marks = ", ".join("?" * len(part))
                for row in self._conn.execute(f"{_SELECT} WHERE id IN ({marks})", part):
                    by_id[int(row[0])] = row
        return [_stored(by_id[i]).task for i in chosen]

    # -- checkpoints -------------------------------------------------------------------------------

    def snapshot(self, dest: str | os.PathLike[str]) -> None:
        """Write a consistent copy of the buffer to ``dest`` (SQLite backup API), atomically:
        ``dest`` is either the old file or the complete new snapshot, never half of one."""
        dest = os.fspath(dest)
        tmp = dest + ".tmp"
        for stale in (tmp, tmp + "-wal", tmp + "-shm", tmp + "-journal"):
            if os.path.exists(stale):
                os.remove(stale)
        target = sqlite3.connect(tmp)
        try:
            self._conn.backup(target)
            target.execute("PRAGMA journal_mode = DELETE")  # a single self-contained file
        finally:
            target.close()
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, dest)

    @classmethod
    def restore(cls, snapshot: str | os.PathLike[str], path: str | os.PathLike[str], *,
                durable: bool = True) -> TaskBuffer:  # fmt: skip
        """Replace the buffer at ``path`` with the content of ``snapshot`` and open it for writing.

        The copy runs through the backup API into ``path``'s own transaction, so a reader of
        ``path`` sees either the old or the restored content."""
        with cls(snapshot, readonly=True) as source:
            target = sqlite3.connect(os.fspath(path), isolation_level=None)
            try:
                source._conn.backup(target)
            finally:
                target.close()
        buffer = cls(path, durable=durable)
        buffer._conn.execute("PRAGMA journal_mode = WAL")
        return buffer
