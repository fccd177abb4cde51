"""Grade math answers in a pool of killable worker processes, one item at a time, each with a deadline.

sympy can hang or eat memory on hostile answers (``\\boxed{9^{9^{9^{9}}}}``), and math-verify's own
timeouts use SIGALRM, which only works on the main thread. So the parent never calls sympy: it
settles plain numbers itself (:func:`~azr.eval.math_equiv.numeric_verdict`) and sends the rest, one
item at a time, to ``python -m azr.eval.math_worker`` subprocesses (plain subprocesses rather than
multiprocessing, which would re-import the caller's ``__main__`` in every worker). A worker that
misses its deadline is killed and replaced; its item counts as wrong (status ``timeout``) and the
run goes on.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import wait
from pathlib import Path

from azr.eval.math_equiv import numeric_verdict
from sandbox.pool import kill_session

DEFAULT_TIMEOUT_S = 5.0
DEFAULT_MEMORY_MB = 2048
STARTUP_TIMEOUT_S = 120.0


class MathGraderError(RuntimeError):
    """A grading worker could not start (the message carries its stderr)."""


@dataclass(frozen=True)
class MathRequest:
    gold: str
    pred: str | None  # the extracted answer; None when the response gave none
    numeric: bool = False
    tolerance: float | None = None


@dataclass(frozen=True)
class MathVerdict:
    correct: bool
    status: str  # "ok" | "no_answer" | "timeout" (worker killed) | "crash" (worker died) | "error: <Exc>"
    seconds: float = 0.0


def _worker_env() -> dict[str, str]:
    """The worker imports azr from wherever this process did (the project need not be installed)."""
    root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
    env["OMP_NUM_THREADS"] = "1"
    return env


class _Worker:
    """A `python -m azr.eval.math_worker` child speaking JSON lines; busy until it says "ready"."""

    def __init__(self, memory_mb: int) -> None:
        self.stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed in kill()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "azr.eval.math_worker", str(memory_mb)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr, env=_worker_env(),
            close_fds=True, start_new_session=True,
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.stdout = self.proc.stdout
        self.fd = self.stdout.fileno()
        os.set_blocking(self.fd, False)
        self.buffer = b""
        self.ready = False
        self.item: int | None = None
        self.started = time.monotonic()

    def send(self, gold: str, pred: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps([gold, pred]) + "\n").encode())
        self.proc.stdin.flush()

    def lines(self) -> list[str] | None:
        """Complete lines read so far, or None at end of file (the worker died)."""
        try:
            chunk = os.read(self.fd, 1 << 16)
        except BlockingIOError:
            chunk = None
        if chunk == b"":
            return None
        self.buffer += chunk or b""
        *done, self.buffer = self.buffer.split(b"\n")
        return [line.decode() for line in done]

    def error_text(self) -> str:
        self.stderr.seek(0)
        return self.stderr.read()[-4000:].decode(errors="replace")

    def kill(self) -> None:
        kill_session(self.proc)
        self.stderr.close()


class MathGrader:
    """``with MathGrader(workers=2, timeout_s=5.0) as g: verdicts = g.grade_many(requests)``.

    ``timeout_s`` bounds each sympy comparison; ``memory_mb`` caps each worker's extra address space.
    Workers start on first use (~1 s to import sympy) and live until ``close``; a killed worker's
    replacement boots while the others keep grading.
    """

    def __init__(self, workers: int = 2, timeout_s: float = DEFAULT_TIMEOUT_S,
                 memory_mb: int = DEFAULT_MEMORY_MB) -> None:
        if workers < 1:
            raise ValueError(f"MathGrader.workers: must be >= 1, got {workers}")
        if timeout_s <= 0:
            raise ValueError(f"MathGrader.timeout_s: must be > 0, got {timeout_s}")
        self.workers = workers
        self.timeout_s = float(timeout_s)
        self.memory_mb = memory_mb
        self.timeouts = 0  # items cut off so far (their workers killed and replaced)
        self.restarts = 0
        self._pool: list[_Worker] = []

    def __enter__(self) -> MathGrader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for w in self._pool:
            w.kill()
        self._pool = []

    def grade(self, request: MathRequest) -> MathVerdict:
        return self.grade_many([request])[0]

    def grade_many(self, requests: Sequence[MathRequest],
                   on_done: Callable[[int], None] | None = None) -> list[MathVerdict]:
        """Verdicts in input order. ``on_done(n)`` is called as items finish (for progress bars)."""
        verdicts: list[MathVerdict | None] = [None] * len(requests)
        queue: deque[int] = deque()
        for i, req in enumerate(requests):
            if req.pred is None or not req.pred.strip():
                verdicts[i] = MathVerdict(False, "no_answer")
                continue
            settled = numeric_verdict(req.gold, req.pred, req.numeric, req.tolerance)
            if settled is not None:
                verdicts[i] = MathVerdict(settled, "ok")
            else:
                queue.append(i)
        if on_done and len(queue) < len(requests):
            on_done(len(requests) - len(queue))
        if queue:
            if not self._pool:
                self._pool = [_Worker(self.memory_mb) for _ in range(self.workers)]
            self._dispatch(requests, queue, verdicts, on_done)
        return [v if v is not None else MathVerdict(False, "crash") for v in verdicts]

    def _replace(self, slot: int) -> None:
        self._pool[slot].kill()
        self._pool[slot] = _Worker(self.memory_mb)
        self.restarts += 1

    def _dispatch(self, requests: Sequence[MathRequest], queue: deque[int],
                  verdicts: list[MathVerdict | None], on_done: Callable[[int], None] | None) -> None:
        def finish(w: _Worker, verdict: MathVerdict) -> None:
            assert w.item is not None
            verdicts[w.item] = verdict
            w.item = None
            if on_done:
                on_done(1)

        while queue or any(w.item is not None for w in self._pool):
            for slot, w in enumerate(self._pool):
                if w.ready and w.item is None and queue:
                    i = queue[0]
                    try:
                        w.send(requests[i].gold, str(requests[i].pred))
                    except (BrokenPipeError, OSError):  # died while idle: replace it, keep the item
                        self._replace(slot)
                        continue
                    queue.popleft()
                    w.item, w.started = i, time.monotonic()
            deadlines = [w.started + (self.timeout_s if w.ready else STARTUP_TIMEOUT_S) for w in self._pool
                         if w.item is not None or not w.ready]
            timeout = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
            readable = wait([w.stdout for w in self._pool], timeout=timeout)
            now = time.monotonic()
            for slot, w in enumerate(self._pool):
                lines = w.lines() if w.stdout in readable else []
                if lines is None:  # end of file: the worker died
                    if not w.ready:
                        raise MathGraderError(f"math grading worker failed to start:\n{w.error_text()}")
                    if w.item is not None:
                        finish(w, MathVerdict(False, "crash", now - w.started))
                    self._replace(slot)
                    continue
                for line in lines:
                    if not w.ready:
                        w.ready = True
                        continue
                    if w.item is not None:
                        correct, status = json.loads(line)
                        finish(w, MathVerdict(bool(correct), str(status), now - w.started))
                if not w.ready and now - w.started > STARTUP_TIMEOUT_S:
                    raise MathGraderError(f"math grading worker did not start in {STARTUP_TIMEOUT_S:.0f} s")
                if w.item is not None and now - w.started >= self.timeout_s:
                    self.timeouts += 1
                    finish(w, MathVerdict(False, "timeout", now - w.started))
                    self._replace(slot)
