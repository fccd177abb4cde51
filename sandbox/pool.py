"""The parent side: a pool of zygote workers behind ``Sandbox.evaluate``/``evaluate_many``.

The parent is the trusted side. It never forks itself (a large trainer forks slowly and holds
threads and CUDA state); it starts one small zygote per worker, sends jobs as JSON frames,
pipelines a couple of jobs per worker so no zygote waits on the parent, and turns the replies
into :class:`Result` records holding canonical :class:`~sandbox.values.Value` objects. A worker
that dies or stops answering is killed, its running job reported ``killed``, and a fresh worker
started; nothing waits forever.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import selectors
import signal
import subprocess
import sys
import sysconfig
import threading
import time
import weakref
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sandbox import protocol
from sandbox.cgroup import MemoryCgroup, PidsCgroup
from sandbox.values import DEFAULT_MAX_CHARS, Value

log = logging.getLogger("sandbox")

STATUSES = ("ok", "error", "timeout", "memory", "killed")
ZYGOTE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "zygote.py")

# Pure-Python/C stdlib modules that typical generated programs use; importing them once in the
# zygote makes them free in every job. Nothing here starts threads at import.
DEFAULT_PRELOAD = (
    "math", "cmath", "random", "collections", "collections.abc", "itertools", "functools",
    "operator", "re", "string", "heapq", "bisect", "json", "decimal", "fractions",
    "copy", "typing", "dataclasses", "enum", "array", "struct", "textwrap", "unicodedata", "numbers",
    "abc", "datetime", "time", "hashlib", "base64", "binascii", "zlib", "keyword", "types",
    "contextlib", "io", "difflib", "pprint", "calendar", "weakref", "sys", "os",
)

# Workers wait on a short queue so a zygote never idles between jobs.
PIPELINE_DEPTH = 2
# Slack on top of a job's own timeout before the parent declares its worker hung.
WATCHDOG_GRACE_S = 5.0


@dataclass
class Job:
    """One unit of work: run ``program`` as a module, then evaluate each of ``exprs``."""

    program: str
    exprs: Sequence[str] = ()
    seed: int = 0
    timeout_s: float | None = None
    mode: str = "module"  # "module" or "main" (run as __main__, like a script)
    capture_output: bool = False
    filename: str = "<main>"


@dataclass
class Result:
    status: str  # "ok" | "error" | "timeout" | "memory" | "killed"
    values: list[Value] = field(default_factory=list)
    error: str | None = None
    duration_s: float = 0.0
    stdout: str = ""
    stderr: str = ""
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    worker: int = -1

    @property
    def ok(self) -> bool:
        return self.status == "ok"


class SandboxError(RuntimeError):
    """The sandbox could not start or was used after close."""


def normalize_jobs(jobs: Iterable[Job | tuple]) -> list[Job]:
    """``Job`` records from jobs or ``(program, exprs, ...)`` tuples, type-checked (shared by backends)."""
    todo = [j if isinstance(j, Job) else Job(*j) for j in jobs]
    for j in todo:
        if not isinstance(j.program, str) or not all(isinstance(e, str) for e in j.exprs):
            raise TypeError("program and exprs must be str")
        if j.mode not in ("module", "main"):
            raise ValueError(f"unknown mode {j.mode!r}")
    return todo


class _Worker:
    def __init__(self, index: int, cmd: list[str], env: dict[str, str], memory_mb: int) -> None:
        self.index = index
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, close_fds=True,
            start_new_session=True, cwd="/",
        )
        # The zygote forks no job before it has said hello, so joining the cgroup here is in time.
        name = f"{os.getpid()}-{index}-{self.proc.pid}"
        self.cgroup = MemoryCgroup(name, memory_mb)
        self.cgroup.add(self.proc.pid)
        self.pids = PidsCgroup(name)
        self.pids.add(self.proc.pid)
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.wfd = self.proc.stdin.fileno()
        self.rfd = self.proc.stdout.fileno()
        self.rbuf = bytearray()
        self.wbuf = bytearray()
        self.write_registered = False  # wfd is in the selector while wbuf holds unsent bytes
        self.inflight: deque[tuple[int, Job, float]] = deque()  # (job index, job, time sent)
        self.last_progress = time.monotonic()
        self.hello: dict = self._read_hello()
        os.set_blocking(self.wfd, False)
        os.set_blocking(self.rfd, False)

    def _read_hello(self) -> dict:
        head = protocol.read_exact(self.rfd, 4)
        body = protocol.read_exact(self.rfd, protocol.LENGTH.unpack(head)[0]) if head else None
        if body is None:
            self.kill()
            raise SandboxError(f"sandbox worker {self.index} exited during start-up (see stderr)")
        hello = json.loads(body)
        if not hello.get("hello"):
            self.kill()
            raise SandboxError(f"sandbox worker {self.index} failed to start: {hello.get('error')}")
        return hello

    @property
    def pid(self) -> int:
        return self.proc.pid

    def frames(self) -> list[protocol.Reply | None]:
        """Complete reply frames received so far (``None`` for a malformed one)."""
        out = []
        while len(self.rbuf) >= 4:
            n = protocol.LENGTH.unpack_from(self.rbuf)[0]
            if len(self.rbuf) < 4 + n:
                break
            out.append(protocol.parse_reply(bytes(self.rbuf[4 : 4 + n])))
            del self.rbuf[: 4 + n]
        return out

    def kill(self) -> None:
        kill_session(self.proc)
        self.cgroup.remove()
        self.pids.remove()


def kill_session(proc: subprocess.Popen) -> None:
    """SIGKILL a helper started with ``start_new_session=True`` and its whole process group, close
    its pipes and reap it; every wait is bounded (a stuck helper never hangs the caller)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        pass
    for f in (proc.stdin, proc.stdout):
        try:
            if f is not None:
                f.close()
        except OSError:
            pass
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass


def _interpreter() -> str:
    """The base interpreter (not a venv wrapper): the zygote runs with -s -S, stdlib only."""
    return getattr(sys, "_base_executable", None) or sys.executable


class PoolFront:
    """The public face every pool shares (the local :class:`Sandbox` and the Ray one): one job or many,
    in input order, refused once closed. A pool provides ``_lock``, ``_closed``, ``_finalizer`` (which
    tears its workers down) and ``_run(jobs)``."""

    _lock: threading.Lock
    _closed: bool
    _finalizer: Any

    def _run(self, jobs: list[Job]) -> list[Result]:
        raise NotImplementedError

    def evaluate(
        self, program: str, exprs: Sequence[str] = (), *, seed: int = 0, timeout_s: float | None = None,
        mode: str = "module", capture_output: bool = False,
    ) -> Result:
        """Run ``program`` as a module in a fresh isolated child, then evaluate ``exprs`` in order."""
        return self.evaluate_many([Job(program, tuple(exprs), seed, timeout_s, mode, capture_output)])[0]

    def evaluate_many(self, jobs: Iterable[Job | tuple]) -> list[Result]:
        """Run jobs across the workers; results come back in input order."""
        todo = normalize_jobs(jobs)
        with self._lock:
            if self._closed:
                raise SandboxError("sandbox is closed")
            return self._run(todo) if todo else []

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._finalizer()

    def __enter__(self: _P) -> _P:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_P = TypeVar("_P", bound=PoolFront)


class Sandbox(PoolFront):
    """A pool of isolated fork-server workers.

    ``workers``: number of zygotes (≈ cores). ``timeout_s``: wall-clock limit per job.
    ``memory_mb``: address-space budget per job on top of the interpreter. ``strict``: refuse to
    start unless every isolation layer this kind of host can offer is active (degraded modes are
    always logged at WARNING). ``fork_loop``: "auto" serves jobs from the C loop
    (``sandbox/_forkloop.c``) when it was built at install, else from the zygote's Python loop
    (same layers, ~1.2x the CPU per job; logged); "c" requires the C loop; "python" forces the other.
    """

    def __init__(
        self,
        workers: int = 2,
        timeout_s: float = 5.0,
        memory_mb: int = 512,
        *,
        disk_mb: int = 64,
        max_output_bytes: int = 64 * 1024,
        max_value_chars: int = DEFAULT_MAX_CHARS,
        preload: Sequence[str] = DEFAULT_PRELOAD,
        strict: bool = False,
        fork_loop: str = "auto",
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be >= 1")
        if timeout_s <= 0:
            raise ValueError("timeout_s must be > 0")
        if memory_mb < 16:
            raise ValueError("memory_mb must be >= 16")
        if fork_loop not in ("auto", "c", "python"):
            raise ValueError(f"fork_loop must be 'auto', 'c' or 'python', not {fork_loop!r}")
        self.timeout_s = float(timeout_s)
        self.memory_mb = int(memory_mb)
        self.max_value_chars = int(max_value_chars)
        self._cfg = {
            "timeout_s": self.timeout_s, "memory_mb": self.memory_mb, "disk_mb": int(disk_mb),
            "max_output_bytes": int(max_output_bytes), "preload": list(preload), "fork_loop": fork_loop,
            "prefixes": sorted({sys.base_prefix, sys.base_exec_prefix, sysconfig.get_paths()["stdlib"]}),
        }
        self._cmd = [_interpreter(), "-s", "-S", "-B", ZYGOTE, json.dumps(self._cfg)]
        # LD_BIND_NOW: resolve every dynamic symbol once in the zygote (and make the GOT read-only)
        # instead of lazily in each job, where the first call to a libc function cost a symbol
        # lookup and a copy-on-write fault on the GOT.
        self._env = {"PYTHONHASHSEED": "0", "MALLOC_ARENA_MAX": "2", "OMP_NUM_THREADS": "1",
                     "OPENBLAS_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "LD_BIND_NOW": "1"}
        self._lock = threading.Lock()
        self._chunk = bytearray(1 << 20)  # read buffer for replies, reused by every call (under _lock)
        self._closed = False
        self._restarts = 0
        self._workers: list[_Worker] = []
        try:
            for i in range(workers):
                self._workers.append(_Worker(i, self._cmd, self._env, self.memory_mb))
        except BaseException:
            self._shutdown(self._workers)
            raise
        self.layers: dict[str, dict] = dict(self._workers[0].hello["layers"])
        self.fork_loop: str = self._workers[0].hello.get("fork_loop", "python")
        if fork_loop == "auto" and self.fork_loop != "c":
            log.warning("sandbox: the C fork loop (sandbox/_forkloop.c) is not built, so jobs are served by "
                        "the zygote's Python loop (same isolation, ~1.2x the CPU per job); reinstall with a "
                        "C compiler to build it")
        cg = self._workers[0].cgroup
        self.layers["memory-cgroup"] = {"active": cg.path is not None, "detail": cg.detail}
        pc = self._workers[0].pids
        self.layers["pids-cgroup"] = {"active": pc.path is not None, "detail": pc.detail}
        degraded = [k for k, v in self.layers.items() if v["active"] is False]
        if degraded:
            msg = "sandbox running DEGRADED, inactive layers: " + "; ".join(
                f"{k} ({self.layers[k]['detail']})" for k in degraded)
            if strict:
                self._shutdown(self._workers)
                raise SandboxError(msg)
            log.warning(msg)
        self._finalizer = weakref.finalize(self, Sandbox._shutdown, self._workers)
        atexit.register(self._finalizer)

    # ------------------------------------------------------------------------------------------

    @property
    def active_layers(self) -> list[str]:
        return [k for k, v in self.layers.items() if v["active"]]

    @property
    def inactive_layers(self) -> list[str]:
        """Layers that would apply on this host but could not be entered (a degraded mode)."""
        return [k for k, v in self.layers.items() if v["active"] is False]

    @property
    def worker_pids(self) -> list[int]:
        return [w.pid for w in self._workers]

    @property
    def restarts(self) -> int:
        return self._restarts

    # ------------------------------------------------------------------------------------------

    @staticmethod
    def _shutdown(workers: list[_Worker]) -> None:
        for w in workers:
            w.kill()

    def _frame(self, idx: int, job: Job) -> bytes:
        return protocol.job_frame(idx, job.program, job.exprs, int(job.seed), job.timeout_s, job.mode,
                                  job.capture_output, job.filename, self.max_value_chars)

    def _run(self, jobs: list[Job]) -> list[Result]:
        results: list[Result | None] = [None] * len(jobs)
        pending: deque[int] = deque(range(len(jobs)))
        remaining = len(jobs)
        sel = selectors.DefaultSelector()
        chunk, chunk_view = self._chunk, memoryview(self._chunk)
        for w in self._workers:
            sel.register(w.rfd, selectors.EVENT_READ, w)
        try:
            while remaining:
                for w in self._workers:
                    sent = False
                    while pending and len(w.inflight) < PIPELINE_DEPTH:
                        idx = pending.popleft()
                        if not w.inflight:
                            w.last_progress = time.monotonic()
                        w.inflight.append((idx, jobs[idx], time.monotonic()))
                        w.wbuf += self._frame(idx, jobs[idx])
                        sent = True
                    if sent:
                        self._flush(w, sel)
                for key, _events in sel.select(timeout=0.5):
                    w = key.data
                    if key.fd == w.wfd:
                        self._flush(w, sel)
                        continue
                    try:  # into a reused buffer: a fresh 1 MiB bytes per read costs mmap+mremap+munmap
                        n = os.readv(w.rfd, [chunk])
                    except BlockingIOError:
                        continue
                    except OSError:
                        n = 0
                    if not n:
                        remaining -= self._replace(w, sel, results, pending, "worker died")
                        continue
                    w.rbuf += chunk_view[:n]
                    for reply in w.frames():
                        idx, job, _sent = w.inflight.popleft()
                        results[idx] = self._result(reply, w.index)
                        remaining -= 1
                        w.last_progress = time.monotonic()
                        if reply is not None and reply.flags & protocol.RETIRE:  # scratch not emptied: start afresh
                            self._replace(w, sel, results, pending, "retired (scratch not emptied)",
                                          running=False)
                            break
                now = time.monotonic()
                for w in list(self._workers):
                    if w.inflight:
                        limit = (w.inflight[0][1].timeout_s or self.timeout_s) + WATCHDOG_GRACE_S
                        if now - w.last_progress > limit:
                            remaining -= self._replace(w, sel, results, pending, "worker hung")
        finally:
            sel.close()
        return results  # type: ignore[return-value]

    def _flush(self, w: _Worker, sel: selectors.BaseSelector) -> None:
        if w.wbuf:
            try:
                del w.wbuf[: os.write(w.wfd, w.wbuf)]
            except BlockingIOError:
                pass
            except OSError:
                w.wbuf.clear()  # the worker is gone; the read side will notice
        if w.wbuf and not w.write_registered:
            sel.register(w.wfd, selectors.EVENT_WRITE, w)
            w.write_registered = True
        elif not w.wbuf and w.write_registered:
            sel.unregister(w.wfd)
            w.write_registered = False

    def _replace(self, w: _Worker, sel: selectors.BaseSelector, results: list, pending: deque,
                 why: str, running: bool = True) -> int:
        """Kill a dead or hung worker, report its running job as killed (when ``running``), requeue
        the rest."""
        for fd in (w.rfd, w.wfd):
            try:
                sel.unregister(fd)
            except (KeyError, ValueError):
                pass
        w.kill()
        done = 0
        if w.inflight and running:
            idx, job, sent = w.inflight.popleft()
            results[idx] = Result("killed", error=f"WorkerDied: {why}", duration_s=time.monotonic() - sent,
                                  worker=w.index)
            done = 1
            for idx, _job, _sent in reversed(w.inflight):
                pending.appendleft(idx)
        log.warning("sandbox worker %d (pid %d): %s; starting a new one", w.index, w.pid, why)
        fresh = _Worker(w.index, self._cmd, self._env, self.memory_mb)
        self._workers[w.index] = fresh
        self._restarts += 1
        sel.register(fresh.rfd, selectors.EVENT_READ, fresh)
        return done

    def _result(self, reply: protocol.Reply | None, worker: int) -> Result:
        """The job's result from its zygote's reply; the child's own bytes are validated here."""
        if reply is None:
            return Result("error", error="ProtocolError: malformed reply from the sandbox worker", worker=worker)
        status, values, error = protocol.classify(reply.wait_status, reply.data, bool(reply.flags & protocol.TIMED_OUT),
                                                  bool(reply.flags & protocol.CUT))
        return Result(
            status=status,
            values=[Value(v) for v in values],
            error=error,
            duration_s=reply.duration_s,
            stdout=reply.stdout.decode("utf-8", "replace"),
            stderr=reply.stderr.decode("utf-8", "replace"),
            stdout_truncated=bool(reply.flags & protocol.STDOUT_TRUNCATED),
            stderr_truncated=bool(reply.flags & protocol.STDERR_TRUNCATED),
            worker=worker,
        )
