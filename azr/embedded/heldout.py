"""A fixed held-out task set of each type, for measuring solve rates before and after RL.

Programs come from the grammar's ``heldout`` split (a hash of the program text decides the split),
so none of them is in the warm-up corpus or in seed tasks drawn from the ``train`` split, whatever
the seeds. The set depends only on ``seed`` and ``HELDOUT_VERSION``; bump the version whenever the
grammar changes.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from azr.embedded.corpus import ground, induction_task, io_task
from azr.embedded.grammar import sample_programs
from azr.tasks.record import TASK_TYPES, Task
from sandbox import Sandbox

HELDOUT_VERSION = 1
DEFAULT_SEED = 20250505


def heldout_tasks(
    sandbox: Sandbox,
    n_per_type: int = 64,
    seed: int = DEFAULT_SEED,
    max_transforms: int = 2,
    n_inputs: int = 10,
    n_shown: int = 5,
    types: tuple[str, ...] = TASK_TYPES,
) -> dict[str, list[Task]]:
    """``n_per_type`` tasks of each of ``types``, each task on its own program.

    ``max_transforms=0`` gives one-step programs (the easy end); the default matches the training
    distribution.
    """
    need = len(types) * n_per_type
    programs = sample_programs(need * 2 + 16, seed, "heldout", max_transforms, allow_fewer=True)
    grounded = ground(sandbox, programs, seed, inputs_per_program=n_inputs + 6)
    rng = random.Random(f"azr-embedded-heldout/{HELDOUT_VERSION}/{seed}")
    out: dict[str, list[Task]] = {t: [] for t in types}
    for g in grounded:
        kind = min(out, key=lambda t: len(out[t]))  # round-robin over types
        if len(out[kind]) >= n_per_type:
            break
        if kind == "induction":
            task = induction_task(g, n_inputs, n_shown, rng)
            if task is not None:
                out[kind].append(task)
        else:
            out[kind].append(io_task(kind, g, rng.choice(g.runs)))
    short = {t: len(v) for t, v in out.items() if len(v) < n_per_type}
    if short:
        raise RuntimeError(f"held-out grammar split yielded too few tasks: {short} of {n_per_type} each")
    for tasks in out.values():
        for t in tasks:
            t.source = "import"  # not self-proposed; these must never be added to a training buffer
    return out


def write_jsonl(tasks: dict[str, list[Task]], path: str | Path) -> None:
    """One ``Task.to_dict()`` per line, all types together (the ``type`` field tells them apart)."""
    with open(path, "w", encoding="utf-8") as fh:
        for kind in TASK_TYPES:
            for t in tasks.get(kind, []):
                fh.write(json.dumps(t.to_dict(), sort_keys=True) + "\n")
