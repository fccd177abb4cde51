"""A buffer writer for the crash test: reports each commit on stdout, then keeps writing.

Usage: python buffer_crash_writer.py DB RUN_ID. Lines: ``task ID``, ``solve ID ATTEMPTS SUCCESSES``,
``rejected N``, each printed (and flushed) only after its transaction committed.
"""

from __future__ import annotations

import random
import sys

from azr.buffer.store import TaskBuffer
from azr.tasks.record import Complexity, Task


def main() -> None:
    path, run_id = sys.argv[1], int(sys.argv[2])
    rng = random.Random(run_id)
    buffer = TaskBuffer(path)
    known = [t.id for t in buffer.iter_tasks() if t.id is not None]
    print("ready", flush=True)
    i = 0
    while True:
        i += 1
        roll = rng.random()
        if roll < 0.7 or not known:
            n = 1 if roll < 0.5 else 8
            tasks = [
                Task("deduction", f"def f(a):\n    return a * {run_id} + {i * 10 + j}", [str(j)], [str(j * run_id + i * 10 + j)],
                     step=i, complexity=Complexity(9, 4, 2), message="x" * rng.randrange(2000))  # fmt: skip
                for j in range(n)
            ]
            for result in buffer.insert_many(tasks):
                print(f"task {result.id}", flush=True)
                known.append(result.id)
        elif roll < 0.9:
            solves = [(rng.choice(known), 8, rng.randrange(9)) for _ in range(rng.randrange(1, 6))]
            buffer.record_solves(i, solves)
            for task_id, attempts, successes in solves:
                print(f"solve {task_id} {attempts} {successes}", flush=True)
        else:
            buffer.log_rejections(i, {"timeout": 2, "runtime_error": 1})
            print("rejected 3", flush=True)


if __name__ == "__main__":
    main()
