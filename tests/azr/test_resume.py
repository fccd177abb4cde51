"""Resume: 4 steps straight equal 2 steps, a real SIGKILL, then a resume for 2 more."""

from __future__ import annotations

import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_args(model_dir: Path, out: Path) -> list[str]:
    return [str(ROOT / "configs" / "tiny.yaml"), f"model.name_or_path={model_dir}", f"trainer.output_dir={out}",
            "trainer.max_steps=4", "trainer.save_every=2", "trainer.report_to=[none]",
            "rl.batch_per_type_role=3", "rl.learnability_rollouts=2", "generation.max_new_tokens_propose=96",
            "generation.max_new_tokens_solve=48"]


def start(args: list[str]) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-m", "azr.cli", "train", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def buffer_rows(db: Path) -> list[tuple]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        tasks = conn.execute("SELECT type, program, inputs, outputs, message, source, step, attempts, successes "
                             "FROM tasks ORDER BY id").fetchall()
        solves = conn.execute("SELECT task_id, step, attempts, successes FROM solves ORDER BY task_id, step").fetchall()
        return tasks + [("solve", *s) for s in solves]
    finally:
        conn.close()


def metrics(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.mark.slow
def test_killed_run_resumes_exactly(e2e_model_dir: Path, tmp_path: Path):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    p = start(run_args(e2e_model_dir, straight))
    assert p.wait(timeout=900) == 0, p.stderr.read()[-3000:]

    p = start(run_args(e2e_model_dir, resumed))
    ckpt = resumed / "checkpoints" / "step-000002" / "trainer_state.json"
    deadline = time.time() + 900
    while not ckpt.is_file() and p.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert ckpt.is_file(), p.stderr.read()[-3000:] if p.poll() is not None else "no checkpoint in time"
    os.kill(p.pid, signal.SIGKILL)  # mid-way through step 3
    p.wait()
    assert not (resumed / "checkpoints" / "step-000004").exists()

    p = start(["--resume", str(resumed), "trainer.max_steps=4"])
    assert p.wait(timeout=900) == 0, p.stderr.read()[-3000:]

    a, b = metrics(straight / "metrics.jsonl"), metrics(resumed / "metrics.jsonl")
    assert [m["step"] for m in b] == [1, 2, 3, 4], "the step counter must be continuous, each step once"
    for ma, mb in zip(a[2:], b[2:]):
        for key, va in ma.items():
            if key.startswith(("time/", "throughput/")) or key == "timestamp":
                continue
            vb = mb.get(key)
            assert vb is not None or va is None, key
            if va is not None:
                assert math.isclose(va, vb, rel_tol=1e-4, abs_tol=1e-5), (ma["step"], key, va, vb)
    final = "checkpoints/step-000004/buffer.sqlite"
    assert buffer_rows(straight / final) == buffer_rows(resumed / final)
    assert buffer_rows(resumed / "buffer.sqlite") == buffer_rows(resumed / final)
