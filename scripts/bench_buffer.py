"""Benchmark the task buffer: stats on a 10,000-task file, and import throughput with validation.

    PYTHONPATH=. python scripts/bench_buffer.py [--tasks 10000] [--rows 1000] [--workers 2]

1. Builds a buffer of realistic synthetic tasks (programs of 6-12 lines from several templates,
   500 steps of growth, solve history, rejection counts) by direct inserts, and reports the rate.
2. Times ``azr buffer stats --json`` as a subprocess (CLI start-up included) and in-process.
3. Writes an official-format seed JSONL (io rows and code_f rows) and imports it with the real
   sandbox, reporting rows/s and validated tasks/s; then imports it again (all duplicates).
Not a test: it prints figures.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from azr.buffer.importer import import_jsonl  # noqa: E402
from azr.buffer.stats import buffer_stats  # noqa: E402
from azr.buffer.store import TaskBuffer  # noqa: E402
from azr.tasks.record import Complexity, Task, ValidationTrace  # noqa: E402
from sandbox import Sandbox  # noqa: E402


@dataclass(frozen=True)
class Template:
    """A program family: source with a constant K, an input maker, and a trusted reference
    implementation (our own code, so the benchmark can write correct outputs without running
    the program text in-process)."""

    source: str
    make_input: Callable[[random.Random], tuple]
    reference: Callable[..., object]


TEMPLATES = [
    Template(
        "def f(nums, k):\n    window, best = [], []\n    for n in nums:\n        window.append(n + {K})\n"
        "        if len(window) > k:\n            window.pop(0)\n        best.append(max(window))\n    return best",
        lambda r: ([r.randrange(-50, 50) for _ in range(r.randrange(1, 9))], r.randrange(1, 4)),
        lambda K, nums, k: [max(x + K for x in nums[max(0, i - k + 1): i + 1]) for i in range(len(nums))],
    ),
    Template(
        "from collections import Counter\n\ndef f(text):\n    counts = Counter(text)\n"
        "    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))\n"
        "    return ''.join(ch * min(n, {K}) for ch, n in ranked[:3])",
        lambda r: ("".join(r.choice("abcdeiospm") for _ in range(r.randrange(3, 15))),),
        lambda K, text: "".join(ch * min(n, K) for ch, n in sorted(
            {c: text.count(c) for c in set(text)}.items(), key=lambda kv: (-kv[1], kv[0]))[:3]),
    ),
    Template(
        "def f(s):\n    out = []\n    for i, ch in enumerate(s):\n        if ch.isalpha():\n"
        "            shift = ({K} + i) % 26\n            base = ord('a') if ch.islower() else ord('A')\n"
        "            out.append(chr((ord(ch) - base + shift) % 26 + base))\n        else:\n"
        "            out.append(ch)\n    return ''.join(out)",
        lambda r: ("".join(r.choice("abcXYZ -!q") for _ in range(r.randrange(1, 12))),),
        lambda K, s: "".join(
            chr((ord(ch) - (ord("a") if ch.islower() else ord("A")) + (K + i) % 26) % 26
                + (ord("a") if ch.islower() else ord("A"))) if ch.isalpha() else ch
            for i, ch in enumerate(s)),
    ),
    Template(
        "def f(d, limit):\n    inverted = {}\n    for key, value in sorted(d.items()):\n"
        "        if value * {K} > limit:\n            inverted.setdefault(value, []).append(key)\n"
        "    return {v: tuple(ks) for v, ks in inverted.items()}",
        lambda r: ({f"k{i}": r.randrange(0, 6) for i in range(r.randrange(1, 7))}, r.randrange(0, 10)),
        lambda K, d, limit: {v: tuple(k for k, x in sorted(d.items()) if x == v and x * K > limit)
                             for v in sorted({x for x in d.values() if x * K > limit})},
    ),
    Template(
        "def f(grid):\n    rows = len(grid)\n    cols = len(grid[0]) if grid else 0\n"
        "    t = [[grid[r][c] + {K} for r in range(rows)] for c in range(cols)]\n"
        "    return [sum(row) for row in t]",
        lambda r: ([[r.randrange(0, 9) for _ in range(3)] for _ in range(r.randrange(1, 4))],),
        lambda K, grid: [sum(grid[r][c] + K for r in range(len(grid))) for c in range(len(grid[0]))],
    ),
]


def _arg_text(args: tuple) -> str:
    return ", ".join(repr(a) for a in args)


def synthetic_task(rng: random.Random, i: int, step: int) -> Task:
    template = TEMPLATES[i % len(TEMPLATES)]
    k = i // len(TEMPLATES) + 1
    program = template.source.replace("{K}", str(k))
    args = template.make_input(rng)
    kind = rng.choice(["deduction", "abduction", "induction"]) if step else rng.choice(["deduction", "abduction"])
    if kind == "induction":
        inputs = [template.make_input(rng) for _ in range(10)]
        return Task("induction", program, [_arg_text(a) for a in inputs],
                    [repr(template.reference(k, *a)) for a in inputs], "Guess the transformation",
                    n_shown=5, source="proposer", step=step, references=[rng.randrange(1, i + 2)],
                    validation=ValidationTrace(["syntax", "execution", "determinism"], {"total": 0.01}),
                    complexity=Complexity(rng.randrange(30, 140), rng.randrange(5, 12), program.count("\n") + 1))
    return Task(kind, program, [_arg_text(args)], [repr(template.reference(k, *args))],
                source="seed" if step == 0 else "proposer", step=step,
                references=[rng.randrange(1, i + 2) for _ in range(6)],
                validation=ValidationTrace(["syntax", "execution", "determinism"], {"total": 0.01}),
                complexity=Complexity(rng.randrange(30, 140), rng.randrange(5, 12), program.count("\n") + 1))


def build_database(path: Path, n_tasks: int, steps: int = 500) -> float:
    rng = random.Random(0)
    started = time.perf_counter()
    per_step = max(1, n_tasks // steps)
    with TaskBuffer(path, durable=False) as buffer:
        i = 0
        for step in range(steps):
            batch = [synthetic_task(rng, i + j, step) for j in range(min(per_step, n_tasks - i))]
            i += len(batch)
            ids = [r.id for r in buffer.insert_many(batch)]
            buffer.record_solves(step, [(rng.choice(ids), 8, rng.randrange(9)) for _ in range(8)])
            buffer.log_rejections(step, {"runtime_error": rng.randrange(5), "timeout": rng.randrange(2),
                                         "nondeterministic": rng.randrange(2)}, task_type="deduction")
            if i >= n_tasks:
                break
        assert len(buffer) == n_tasks, f"{len(buffer)} tasks stored (synthetic duplicates?)"
    return time.perf_counter() - started


def time_stats(path: Path, repeats: int = 5) -> tuple[float, float]:
    cli = [sys.executable, "-c", "from azr.buffer.cli import app; app()", "stats", "--json", "--db", str(path)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess_s = []
    for _ in range(repeats):
        t = time.perf_counter()
        out = subprocess.run(cli, env=env, capture_output=True, text=True, check=True).stdout
        subprocess_s.append(time.perf_counter() - t)
        assert json.loads(out)["tasks"] > 0
    inprocess_s = []
    with TaskBuffer(path, readonly=True) as buffer:
        for _ in range(repeats):
            t = time.perf_counter()
            buffer_stats(buffer)
            inprocess_s.append(time.perf_counter() - t)
    return statistics.median(subprocess_s), statistics.median(inprocess_s)


def write_seed_file(path: Path, n_rows: int) -> None:
    """Official-format rows: 80% io rows (two tasks each), 20% code_f rows (ten inputs each)."""
    rng = random.Random(1)
    with open(path, "w") as fh:
        for i in range(n_rows):
            template = TEMPLATES[i % len(TEMPLATES)]
            k = 1000 + i // len(TEMPLATES)
            program = template.source.replace("{K}", str(k))
            if i % 5 == 4:
                inputs = [template.make_input(rng) for _ in range(10)]
                row = {"snippet": program, "inputs": [_arg_text(a) for a in inputs],
                       "outputs": [repr(template.reference(k, *a)) for a in inputs],
                       "message": "Guess the transformation", "imports": []}
            else:
                args = template.make_input(rng)
                row = {"snippet": program, "input": _arg_text(args), "output": repr(template.reference(k, *args)),
                       "imports": [], "original_snippet": program, "composite_functions": []}
            fh.write(json.dumps(row) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--rows", type=int, default=1_000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "buffer.db"
        seconds = build_database(db, args.tasks)
        size_mb = db.stat().st_size / 1e6 + (Path(str(db) + "-wal").stat().st_size / 1e6 if Path(str(db) + "-wal").exists() else 0)
        print(f"build:  {args.tasks} tasks inserted in {seconds:.2f} s ({args.tasks / seconds:,.0f} tasks/s, "
              f"dedup keys included; {size_mb:.1f} MB)")
        cli_s, inproc_s = time_stats(db)
        print(f"stats:  `azr buffer stats --json` on {args.tasks} tasks: {cli_s * 1000:.0f} ms as a subprocess "
              f"(start-up included), {inproc_s * 1000:.0f} ms in-process (median of 5)")

        seed = Path(tmp) / "seed_io.jsonl"
        write_seed_file(seed, args.rows)
        fresh = Path(tmp) / "import.db"
        with Sandbox(workers=args.workers, timeout_s=5.0, memory_mb=512) as sb, TaskBuffer(fresh) as buffer:
            first = import_jsonl(buffer, str(seed), sb)
            again = import_jsonl(buffer, str(seed), sb)
        for label, report in (("import", first), ("re-import", again)):
            print(f"{label + ':':10}{report.lines} rows -> {report.candidates} tasks validated in {report.seconds:.2f} s: "
                  f"{report.lines / report.seconds:,.0f} rows/s, {report.candidates / report.seconds:,.0f} tasks/s "
                  f"(added {report.added}, duplicates {report.duplicates}, rejected {dict(report.rejected)}; "
                  f"{args.workers} sandbox workers)")


if __name__ == "__main__":
    main()
