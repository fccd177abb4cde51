"""`azr buffer`: inspect, sample, export and import a run's task buffer.

Every command takes ``--db PATH`` or ``--run DIR`` (meaning DIR/buffer.db). Reading commands open
the file read-only, so they are safe while training writes to it. ``--json`` prints plain JSON for
scripts; without it the output is tables for people.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn, Optional

import typer
from rich.console import Console
from rich.markup import escape

from azr.buffer.errors import CorruptBufferError, TaskBufferError
from azr.buffer.filters import TaskFilter
from azr.buffer.store import StoredTask, TaskBuffer
from azr.tasks.record import SOURCES, TASK_TYPES

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Inspect, import and export a task buffer.")

BUFFER_FILE = "buffer.db"

DbOpt = Annotated[Optional[Path], typer.Option("--db", help="Buffer file (SQLite).", show_default=False)]
RunOpt = Annotated[Optional[Path], typer.Option("--run", help=f"Run directory; uses DIR/{BUFFER_FILE}.", show_default=False)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of tables.")]
TypeOpt = Annotated[Optional[list[str]], typer.Option("--type", "-t", help=f"Task type ({', '.join(TASK_TYPES)}); repeatable.", show_default=False)]  # fmt: skip
SourceOpt = Annotated[Optional[list[str]], typer.Option("--source", help=f"Source ({', '.join(SOURCES)}); repeatable.", show_default=False)]  # fmt: skip
StepMinOpt = Annotated[Optional[int], typer.Option("--step-min", help="Only tasks added at this step or later.", show_default=False)]  # fmt: skip
StepMaxOpt = Annotated[Optional[int], typer.Option("--step-max", help="Only tasks added at this step or earlier.", show_default=False)]  # fmt: skip
SolveMinOpt = Annotated[Optional[float], typer.Option("--solve-min", help="Only attempted tasks with solve rate >= this (0..1).", show_default=False)]  # fmt: skip
SolveMaxOpt = Annotated[Optional[float], typer.Option("--solve-max", help="Only attempted tasks with solve rate <= this (0..1).", show_default=False)]  # fmt: skip
SearchOpt = Annotated[Optional[str], typer.Option("--search", "-s", help="Case-insensitive text in program, message, inputs or outputs.", show_default=False)]  # fmt: skip


def _fail(message: str, code: int = 1) -> NoReturn:
    Console(stderr=True, highlight=False).print(f"[bold red]error:[/bold red] {escape(message)}", soft_wrap=True)
    raise typer.Exit(code)


def _db_path(db: Path | None, run: Path | None) -> Path:
    if db is not None and run is not None:
        _fail("pass either --db PATH or --run DIR, not both")
    if db is None and run is None:
        _fail(f"say which buffer: --db PATH (a buffer file) or --run DIR (a run directory with {BUFFER_FILE})")
    if run is not None:
        if not run.is_dir():
            _fail(f"run directory {run} does not exist: pass an existing run directory, or --db PATH")
        return run / BUFFER_FILE
    assert db is not None
    if db.is_dir():
        _fail(f"{db} is a directory: pass the buffer file (--db {db / BUFFER_FILE}) or use --run {db}")
    return db


@contextmanager
def _opened(db: Path | None, run: Path | None, *, readonly: bool = True, create: bool = False):  # type: ignore[no-untyped-def]
    path = _db_path(db, run)
    if create and not path.parent.is_dir():
        _fail(f"directory {path.parent} does not exist: create it first")
    try:
        buffer = TaskBuffer(path, readonly=readonly, create=create)
    except TaskBufferError as exc:
        _fail(str(exc))
    try:
        yield buffer
    except sqlite3.DatabaseError as exc:
        _fail(str(CorruptBufferError(str(path), str(exc))))
    finally:
        buffer.close()


def _filter(types: list[str] | None, sources: list[str] | None, step_min: int | None, step_max: int | None,
            solve_min: float | None, solve_max: float | None, search: str | None) -> TaskFilter:  # fmt: skip
    for t in types or ():
        if t not in TASK_TYPES:
            _fail(f"--type {t!r} is not a task type: use one of {', '.join(TASK_TYPES)}", 2)
    for s in sources or ():
        if s not in SOURCES:
            _fail(f"--source {s!r} is not a source: use one of {', '.join(SOURCES)}", 2)
    for name, value in (("--solve-min", solve_min), ("--solve-max", solve_max)):
        if value is not None and not 0.0 <= value <= 1.0:
            _fail(f"{name} is a solve rate between 0 and 1, got {value}", 2)
    return TaskFilter(tuple(types or ()), tuple(sources or ()), step_min, step_max, solve_min, solve_max, search)


def _task_json(stored: StoredTask) -> dict[str, Any]:
    return {**stored.task.to_dict(), "attempts": stored.attempts, "successes": stored.successes,
            "solve_rate": stored.solve_rate, "created_at": stored.created_at}  # fmt: skip


def _echo_json(data: object) -> None:
    typer.echo(json.dumps(data, indent=1, ensure_ascii=False))


@app.command("list")
def list_tasks(
    db: DbOpt = None, run: RunOpt = None, type_: TypeOpt = None, source: SourceOpt = None,
    step_min: StepMinOpt = None, step_max: StepMaxOpt = None, solve_min: SolveMinOpt = None,
    solve_max: SolveMaxOpt = None, search: SearchOpt = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="Show at most this many tasks (0: all).")] = 50,
    offset: Annotated[int, typer.Option("--offset", help="Skip this many matching tasks first.")] = 0,
    newest: Annotated[bool, typer.Option("--newest", help="Newest tasks first.")] = False,
    as_json: JsonOpt = False,
) -> None:  # fmt: skip
    """List tasks, oldest first, with filters."""
    filt = _filter(type_, source, step_min, step_max, solve_min, solve_max, search)
    with _opened(db, run) as buffer, buffer.read_snapshot():
        total = buffer.count(filt)
        rows = buffer.query(filt, limit=limit or None, offset=offset, newest_first=newest)
    if as_json:
        _echo_json({"total": total, "tasks": [_task_json(r) for r in rows]})
        return
    from azr.buffer.views import task_table

    console = Console()
    console.print(task_table(rows, f"{len(rows)} of {total} matching tasks", console.width))


@app.command("show")
def show(
    task_id: Annotated[int, typer.Argument(help="Task id (see `azr buffer list`).")],
    db: DbOpt = None, run: RunOpt = None, as_json: JsonOpt = False,
) -> None:  # fmt: skip
    """Show one task: program, inputs and outputs, provenance, validation and solve history."""
    with _opened(db, run) as buffer, buffer.read_snapshot():
        try:
            stored = buffer.stored(task_id)
        except KeyError:
            _fail(f"no task with id {task_id} in {buffer.path}: `azr buffer list` shows the ids")
        history = buffer.solve_history(task_id)
    if as_json:
        _echo_json({**_task_json(stored), "solve_history": [vars(h) for h in history]})
        return
    from azr.buffer.views import task_view

    Console().print(task_view(stored, history))


@app.command("stats")
def stats(db: DbOpt = None, run: RunOpt = None, as_json: JsonOpt = False) -> None:
    """Counts per type and source, rejection reasons, solve rates, complexity, duplicates, growth."""
    from azr.buffer.stats import buffer_stats

    with _opened(db, run) as buffer:
        data = buffer_stats(buffer)
    if as_json:
        _echo_json(data)
        return
    from azr.buffer.views import print_stats

    print_stats(Console(), data)


@app.command("sample")
def sample(
    db: DbOpt = None, run: RunOpt = None, type_: TypeOpt = None, source: SourceOpt = None,
    step_min: StepMinOpt = None, step_max: StepMaxOpt = None, solve_min: SolveMinOpt = None,
    solve_max: SolveMaxOpt = None, search: SearchOpt = None,
    n: Annotated[int, typer.Option("-n", help="Tasks per type.")] = 5,
    seed: Annotated[int, typer.Option("--seed", help="RNG seed: the same seed and buffer give the same sample.")] = 0,
    replace: Annotated[bool, typer.Option("--replace", help="Sample with replacement.")] = False,
    as_json: JsonOpt = False,
) -> None:  # fmt: skip
    """Draw tasks uniformly within each type, as the trainer does for references and solver batches."""
    filt = _filter(None, source, step_min, step_max, solve_min, solve_max, search)
    types = _filter(type_, None, None, None, None, None, None).types or TASK_TYPES
    rng = random.Random(seed)
    with _opened(db, run) as buffer, buffer.read_snapshot():
        picked = [buffer.stored(t.id) for ty in types for t in buffer.sample(ty, n, rng, replace=replace, filt=filt)
                  if t.id is not None]  # fmt: skip
    if as_json:
        _echo_json({"seed": seed, "tasks": [_task_json(r) for r in picked]})
        return
    from azr.buffer.views import task_table

    console = Console()
    console.print(task_table(picked, f"{len(picked)} sampled tasks (seed {seed})", console.width))


@app.command("export")
def export(
    out: Annotated[str, typer.Argument(help="Output JSONL file, or - for stdout.")],
    db: DbOpt = None, run: RunOpt = None, type_: TypeOpt = None, source: SourceOpt = None,
    step_min: StepMinOpt = None, step_max: StepMaxOpt = None, solve_min: SolveMinOpt = None,
    solve_max: SolveMaxOpt = None, search: SearchOpt = None, as_json: JsonOpt = False,
) -> None:  # fmt: skip
    """Write tasks in the official Absolute Zero seed JSONL format (plus task_type/n_shown fields)."""
    from azr.buffer.jsonl_io import write_rows

    filt = _filter(type_, source, step_min, step_max, solve_min, solve_max, search)
    with _opened(db, run) as buffer, buffer.read_snapshot():
        if out == "-":
            n = write_rows(sys.stdout, buffer.iter_tasks(filt))
            sys.stdout.flush()
        else:
            target = Path(out)
            if not target.parent.is_dir():
                _fail(f"directory {target.parent} does not exist: create it or choose another output path")
            tmp = target.with_name(target.name + ".tmp")
            with open(tmp, "w", encoding="utf-8") as fh:
                n = write_rows(fh, buffer.iter_tasks(filt))
            os.replace(tmp, target)
    summary = {"path": out, "rows": n}
    if as_json and out != "-":
        _echo_json(summary)
    else:
        Console(stderr=out == "-").print(f"wrote {n} tasks to {out if out != '-' else 'stdout'}")


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="JSONL file in the official seed format (io or code_f rows).")],
    db: DbOpt = None, run: RunOpt = None, type_: TypeOpt = None,
    step: Annotated[int, typer.Option("--step", help="Training step to record for the added tasks.")] = 0,
    source: Annotated[str, typer.Option("--source", help="Source to record: import or seed.")] = "import",
    workers: Annotated[int, typer.Option("--workers", help="Sandbox worker processes.")] = 2,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds per sandbox run.")] = 5.0,
    memory_mb: Annotated[int, typer.Option("--memory-mb", help="Memory budget per sandbox run.")] = 512,
    chunk_rows: Annotated[int, typer.Option("--chunk-rows", help="Rows validated per sandbox batch and commit.")] = 128,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="No progress bar.")] = False,
    as_json: JsonOpt = False,
) -> None:  # fmt: skip
    """Validate every row in the sandbox and add the valid tasks; creates the buffer if needed.

    An io row (snippet/input/output) gives a deduction and an abduction task, a code_f row
    (snippet/inputs/outputs/message) an induction task; --type restricts which are imported.
    Invalid rows are counted by reason and never stored; importing a file twice adds nothing."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from azr.buffer.importer import import_jsonl
    from azr.tasks.validation import ValidationConfig
    from sandbox import Sandbox

    types = _filter(type_, None, None, None, None, None, None).types or TASK_TYPES
    if source not in ("import", "seed"):
        _fail(f"--source must be import or seed, got {source!r}", 2)
    if not file.exists():
        _fail(f"{file}: no such file: pass the path of a JSONL seed file")
    if not file.is_file():
        _fail(f"{file} is not a file: pass the path of a JSONL seed file")
    if chunk_rows < 1 or workers < 1 or timeout <= 0:
        _fail("--chunk-rows and --workers must be >= 1 and --timeout > 0", 2)
    config = ValidationConfig(timeout_s=timeout)
    progress = Progress(TextColumn("importing"), BarColumn(), MofNCompleteColumn(), TextColumn("lines"),
                        TimeElapsedColumn(), console=Console(stderr=True), disable=no_progress or as_json)  # fmt: skip
    with _opened(db, run, readonly=False, create=True) as buffer:
        try:
            sb = Sandbox(workers=workers, timeout_s=timeout, memory_mb=memory_mb)
        except Exception as exc:  # any start-up failure gets the same advice
            _fail(f"the sandbox did not start ({exc}); see `python -m sandbox --help` for its requirements")
        with sb, progress:
            bar = progress.add_task("import", total=None)

            def advance(done: int, total: int) -> None:
                progress.update(bar, completed=done, total=total)

            try:
                report = import_jsonl(buffer, str(file), sb, types=types, source=source, step=step,
                                      chunk_rows=chunk_rows, config=config, progress=advance)  # fmt: skip
            except ValueError as exc:
                _fail(str(exc))
    if as_json:
        _echo_json({"db": buffer.path, **report.to_dict()})
        return
    from azr.buffer.views import print_import

    print_import(Console(), report, buffer.path)


@app.command("seed")
def seed(
    db: DbOpt = None, run: RunOpt = None, type_: TypeOpt = None,
    file: Annotated[Optional[Path], typer.Option("--file", help="Seed JSONL file instead of the identity tasks.", show_default=False)] = None,
    workers: Annotated[int, typer.Option("--workers", help="Sandbox worker processes.")] = 2,
    as_json: JsonOpt = False,
) -> None:  # fmt: skip
    """Add the paper's identity seed tasks (or a seed file's rows) as validated seed tasks."""
    from azr.buffer.seeds import seed_buffer
    from sandbox import Sandbox

    types = _filter(type_, None, None, None, None, None, None).types or TASK_TYPES
    if file is not None and not file.is_file():
        _fail(f"{file}: no such file: pass the path of a JSONL seed file")
    with _opened(db, run, readonly=False, create=True) as buffer, Sandbox(workers=workers) as sb:
        report = seed_buffer(buffer, sb, seed_file=str(file) if file else None, types=types)
    if as_json:
        _echo_json({"db": buffer.path, **report.to_dict()})
        return
    from azr.buffer.views import print_import

    print_import(Console(), report, buffer.path)
