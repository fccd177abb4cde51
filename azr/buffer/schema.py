"""The buffer's SQLite schema and the one place that opens buffer files.

A buffer is one SQLite file per run, in WAL mode so that one writer (the trainer) and many readers
(``azr buffer ...``) work at once. The ``meta`` table marks the file as ours and records the schema
version, so a foreign or newer file fails with a message instead of a confusing SQL error.
"""

from __future__ import annotations

import os
import sqlite3
import time
import urllib.parse

from azr.buffer.errors import BufferNotFoundError, CorruptBufferError, NotABufferError, SchemaTooNewError

FORMAT_NAME = "azr-task-buffer"
SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 10_000

_DDL = """
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE tasks (
    id            INTEGER PRIMARY KEY,
    type          TEXT    NOT NULL CHECK (type IN ('deduction', 'abduction', 'induction')),
    program       TEXT    NOT NULL,
    inputs        TEXT    NOT NULL,  -- JSON list of argument-list texts
    outputs       TEXT    NOT NULL,  -- JSON list of canonical literal texts
    message       TEXT    NOT NULL DEFAULT '',
    imports       TEXT    NOT NULL,  -- JSON list of import statements
    n_shown       INTEGER NOT NULL,
    source        TEXT    NOT NULL CHECK (source IN ('seed', 'import', 'proposer')),
    step          INTEGER NOT NULL,
    reference_ids TEXT    NOT NULL,  -- JSON list of task ids shown to the proposer
    validation    TEXT    NOT NULL,  -- JSON ValidationTrace
    ast_nodes     INTEGER NOT NULL,
    ast_depth     INTEGER NOT NULL,
    lines         INTEGER NOT NULL,
    dedup_key     TEXT    NOT NULL UNIQUE,
    attempts      INTEGER NOT NULL DEFAULT 0,  -- totals of the solves table, kept for fast filters
    successes     INTEGER NOT NULL DEFAULT 0,
    created_at    REAL    NOT NULL
);
CREATE INDEX tasks_type_step ON tasks (type, step);
CREATE INDEX tasks_step ON tasks (step);
CREATE TABLE solves (
    task_id   INTEGER NOT NULL REFERENCES tasks (id),
    step      INTEGER NOT NULL,
    attempts  INTEGER NOT NULL CHECK (attempts >= 0),
    successes INTEGER NOT NULL CHECK (successes >= 0 AND successes <= attempts),
    PRIMARY KEY (task_id, step)
) WITHOUT ROWID;
CREATE TABLE rejections (
    step   INTEGER NOT NULL,
    type   TEXT    NOT NULL,  -- task type, or '' when unknown (a malformed import line)
    source TEXT    NOT NULL,
    reason TEXT    NOT NULL,
    count  INTEGER NOT NULL,
    PRIMARY KEY (step, type, source, reason)
) WITHOUT ROWID;
"""


def _uri(path: str, mode: str) -> str:
    return f"file:{urllib.parse.quote(os.path.abspath(path))}?mode={mode}"


def connect(path: str, *, readonly: bool, create: bool = False, durable: bool = True) -> sqlite3.Connection:
    """Open (or with ``create`` make) a buffer file and check that it is one we can read.

    Connections are in autocommit mode: writers open explicit ``BEGIN IMMEDIATE`` transactions.
    ``durable`` selects ``synchronous=FULL`` (a committed row survives power loss) over ``NORMAL``
    (survives a killed process, may lose the last commits on power loss, faster).
    """
    path = os.fspath(path)
    exists = os.path.isfile(path)
    if not exists and (readonly or not create):
        raise BufferNotFoundError(path)
    mode = "ro" if readonly else "rwc"
    try:
        conn = sqlite3.connect(_uri(path, mode), uri=True, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
    except sqlite3.Error as exc:
        raise NotABufferError(path, f"cannot open: {exc}") from None
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if readonly:
            conn.execute("PRAGMA query_only = ON")
        version = _check(conn, path, allow_empty=create and not readonly)
        if version is None:
            _initialize(conn)
            _check(conn, path, allow_empty=False)
        if not readonly:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(f"PRAGMA synchronous = {'FULL' if durable else 'NORMAL'}")
            conn.execute("PRAGMA foreign_keys = ON")
    except BaseException:
        conn.close()
        raise
    return conn


def _check(conn: sqlite3.Connection, path: str, allow_empty: bool) -> int | None:
    """Return the file's schema version, or None for an empty database we may initialize."""
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError as exc:
        if "not a database" in str(exc) or "encrypted" in str(exc):
            raise NotABufferError(path, "not an SQLite database") from None
        raise CorruptBufferError(path, str(exc)) from None
    if not tables and allow_empty:
        return None
    if "meta" not in tables:
        why = "empty SQLite database" if not tables else "SQLite database without an azr meta table"
        raise NotABufferError(path, why)
    try:
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    except sqlite3.DatabaseError as exc:
        raise CorruptBufferError(path, str(exc)) from None
    if meta.get("format") != FORMAT_NAME:
        raise NotABufferError(path, f"meta.format is {meta.get('format')!r}, expected {FORMAT_NAME!r}")
    try:
        version = int(meta["schema_version"])
    except (KeyError, ValueError):
        raise CorruptBufferError(path, "meta.schema_version is missing or not a number") from None
    if version > SCHEMA_VERSION:
        raise SchemaTooNewError(path, version, SCHEMA_VERSION)
    return version


def _initialize(conn: sqlite3.Connection) -> None:
    # WAL must be set outside a transaction; it is persistent, so every later opener gets it.
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("BEGIN IMMEDIATE")
    try:
        if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'meta'").fetchone():
            conn.execute("ROLLBACK")  # another process initialized it first
            return
        for statement in _DDL.split(";"):
            if statement.strip():
                conn.execute(statement)
        conn.executemany(
            "INSERT INTO meta (key, value) VALUES (?, ?)",
            [("format", FORMAT_NAME), ("schema_version", str(SCHEMA_VERSION)), ("created_at", str(time.time()))],
        )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
