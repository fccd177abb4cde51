"""Kill a writer with SIGKILL at random moments: the file stays consistent and keeps every commit."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

from azr.buffer.store import TaskBuffer

WRITER = Path(__file__).with_name("buffer_crash_writer.py")
ROOT = Path(__file__).resolve().parents[3]


def test_sigkill_at_random_moments_loses_no_committed_row(tmp_path: Path) -> None:
    db = tmp_path / "buffer.db"
    rng = random.Random(1234)
    committed: set[int] = set()
    attempts: dict[int, int] = defaultdict(int)
    rejected = 0
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    started = time.monotonic()
    for run in range(20):
        proc = subprocess.Popen([sys.executable, str(WRITER), str(db), str(run + 1)], stdout=subprocess.PIPE,
                                env=env, text=True)  # fmt: skip
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready", f"writer {run} did not start"
        time.sleep(rng.uniform(0.0, 0.25))
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate(timeout=10)
        assert proc.returncode == -signal.SIGKILL
        lines = out.split("\n")[:-1]  # a last line without its newline was not fully reported
        for line in lines:
            kind, *rest = line.split()
            if kind == "task":
                committed.add(int(rest[0]))
            elif kind == "solve":
                attempts[int(rest[0])] += int(rest[1])
            else:
                rejected += int(rest[0])

        # The CLI's way in: read-only, while the killed writer's WAL is still there.
        with TaskBuffer(db, readonly=True) as reader:
            conn = reader.connection
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            stored = {r[0] for r in conn.execute("SELECT id FROM tasks")}
            assert committed <= stored, f"run {run}: lost committed tasks {sorted(committed - stored)[:10]}"
            totals = dict(conn.execute("SELECT id, attempts FROM tasks WHERE attempts > 0").fetchall())
            history = dict(conn.execute("SELECT task_id, SUM(attempts) FROM solves GROUP BY task_id").fetchall())
            assert totals == history  # record_solves updates both tables in one transaction
            for task_id, n in attempts.items():
                assert totals.get(task_id, 0) >= n, f"run {run}: lost solves of task {task_id}"
            assert (conn.execute("SELECT COALESCE(SUM(count), 0) FROM rejections").fetchone()[0]) >= rejected
            assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    print(f"{len(committed)} committed tasks, {sum(attempts.values())} solve attempts, {rejected} rejections")
    assert len(committed) > 100  # the kills did land while the writer was busy
    assert time.monotonic() - started < 60
