"""The persistent task buffer: one SQLite file per run, with dedup, solve history and a CLI.

Trainer-side use::

    from azr.buffer import TaskBuffer
    with TaskBuffer(run_dir / "buffer.db") as buffer:
        seed_buffer(buffer, sandbox)                      # azr.buffer.seeds: identity tasks, validated
        refs = buffer.sample("deduction", 6, rng)         # K references, uniform within the type
        results = buffer.insert_many(validated_tasks)     # "added" / "duplicate" per task
        buffer.log_rejections(step, {"timeout": 2}, task_type="deduction")
        buffer.record_solves(step, [(task_id, attempts, successes), ...])
        buffer.snapshot(checkpoint_dir / "buffer.db")     # consistent copy; TaskBuffer.restore(...) to resume

Importing official seed files: :func:`azr.buffer.importer.import_jsonl`; statistics:
:func:`azr.buffer.stats.buffer_stats`; command line: ``azr buffer --help``.
"""

from azr.buffer.errors import (
    BufferNotFoundError,
    CorruptBufferError,
    NotABufferError,
    SchemaTooNewError,
    TaskBufferError,
)
from azr.buffer.filters import TaskFilter
from azr.buffer.store import InsertResult, StoredTask, TaskBuffer

__all__ = [
    "BufferNotFoundError",
    "CorruptBufferError",
    "InsertResult",
    "NotABufferError",
    "SchemaTooNewError",
    "StoredTask",
    "TaskBuffer",
    "TaskBufferError",
    "TaskFilter",
]
