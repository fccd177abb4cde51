"""Seeding a fresh buffer: the paper's identity tasks, or a seed file.

As in the paper, a run can start from nothing but the identity function: a deduction and an
abduction task ``def f(a): return a`` on ``'Hello world'``, and an induction task with six inputs and
the message "Write a function that returns whatever you input". The official code writes one input
as ``dict(a=1, b=2)``; inputs here must be plain literals, so it is the equal ``{'a': 1, 'b': 2}``.
Seeds are validated in the sandbox like any other task.
"""

from __future__ import annotations

from azr.buffer.importer import ImportReport, import_candidates, import_jsonl
from azr.buffer.jsonl_io import Candidate
from azr.buffer.store import TaskBuffer
from azr.tasks.record import TASK_TYPES, Task
from azr.tasks.validation import ValidationConfig
from sandbox import Sandbox

IDENTITY_PROGRAM = "def f(a):\n    return a"
IDENTITY_INPUT = "'Hello world'"
IDENTITY_INDUCTION_INPUTS = (
    "'Hello world'",
    "1",
    "{'a': 1, 'b': 2}",
    "(1.1, 1.2, 1.3)",
    "'[[1, 0, 0], [0, 0, 0], [0, 0, 0]]'",
    "1001101100010001",
)
IDENTITY_MESSAGE = "Write a function that returns whatever you input"


def identity_tasks(types: tuple[str, ...] = TASK_TYPES, step: int = 0) -> list[Task]:
    """The unvalidated identity candidates of the requested types."""
    tasks = []
    for task_type in types:
        if task_type == "induction":
            inputs = list(IDENTITY_INDUCTION_INPUTS)
            tasks.append(Task("induction", IDENTITY_PROGRAM, inputs, [], IDENTITY_MESSAGE, [], len(inputs) // 2, "seed", step))
        elif task_type in TASK_TYPES:
            tasks.append(Task(task_type, IDENTITY_PROGRAM, [IDENTITY_INPUT], [], "", [], 1, "seed", step))
        else:
            raise ValueError(f"unknown task type {task_type!r}; expected one of {', '.join(TASK_TYPES)}")
    return tasks


def seed_buffer(
    buffer: TaskBuffer,
    sb: Sandbox,
    *,
    seed_file: str | None = None,
    types: tuple[str, ...] = TASK_TYPES,
    step: int = 0,
    config: ValidationConfig | None = None,
) -> ImportReport:
    """Add the identity seeds (or the rows of ``seed_file``) as validated ``source="seed"`` tasks.
    Seeding twice adds nothing the second time (the seeds are duplicates)."""
    if seed_file is not None:
        return import_jsonl(buffer, seed_file, sb, types=types, source="seed", step=step, config=config)
    rows = [(0, [Candidate(0, task, ())]) for task in identity_tasks(types, step)]
    return import_candidates(buffer, sb, rows, total_lines=len(rows), source="seed", step=step, config=config,
                             report=ImportReport(path="<identity seeds>"))  # fmt: skip
