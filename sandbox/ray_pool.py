"""The sandbox spread over a Ray cluster: :class:`RaySandbox`, the local pool's API on many nodes.

Each Ray actor owns an ordinary local :class:`~sandbox.pool.Sandbox`, so every guarantee of the
local pool (a fork per job, namespaces, seccomp, cgroups, canonical values) holds on whichever
node the actor lands. The driver only splits a batch into chunks, keeps a bounded number of them in
flight per actor (so a slow actor holds back at most its own chunks), and rebuilds
:class:`~sandbox.pool.Result` records from plain data. An actor that dies or stops answering is
replaced; the jobs it held run once more on the new actor, and a job lost twice is reported
``killed``. Every wait has a deadline, so nothing hangs.

Why Ray's pickling is safe here: Ray pickles call arguments and replies. The driver unpickles only
what an actor returns, and an actor is trusted code (the local pool's parent side): a job's output
reaches it only as JSON text that the local pool parses, and the actor replies with dicts of
str/int/float/bool/None fields built by that parent. Nothing a job produced is ever unpickled as an
object; values cross as canonical literal text and become :class:`~sandbox.values.Value` here.
"""

from __future__ import annotations

import atexit
import logging
import math
import os
import socket
import threading
import time
import weakref
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import ray
from ray.exceptions import GetTimeoutError, RayError

from sandbox import pool as _pool
from sandbox.pool import STATUSES, Job, PoolFront, Result, Sandbox, SandboxError
from sandbox.values import Value

log = logging.getLogger("sandbox")

# Chunks in flight per actor: one running, one queued, so an actor never waits on a round trip.
IN_FLIGHT = 2
# A batch is cut into about this many chunks per actor (load balance), each at most MAX_CHUNK jobs.
CHUNKS_PER_ACTOR = 4
MAX_CHUNK = 32
# Runs per job: an actor lost mid-chunk reruns its jobs once; a job lost twice is reported killed.
MAX_ATTEMPTS = 2
# Slack on top of a chunk's worst case (every job at its timeout plus the local watchdog's grace)
# for scheduling and for a replacement actor's start-up.
ACTOR_GRACE_S = 60.0
# How long the constructor waits for the actors to be placed and to start their workers.
START_TIMEOUT_S = 180.0
CLOSE_TIMEOUT_S = 10.0
POLL_S = 0.5


# ---- the actor: runs on a Ray worker, next to its local pool ----------------------------------


class _SandboxActor:
    """A local :class:`Sandbox` behind a Ray actor; jobs in and results out as plain data."""

    def __init__(self, workers: int, timeout_s: float, memory_mb: int, kwargs: dict[str, Any]) -> None:
        self.sb = Sandbox(workers=workers, timeout_s=timeout_s, memory_mb=memory_mb, **kwargs)

    def info(self) -> dict[str, Any]:
        return {"layers": self.sb.layers, "worker_pids": self.sb.worker_pids, "pid": os.getpid(),
                "host": socket.gethostname(), "node": ray.get_runtime_context().get_node_id()}

    def run(self, jobs: list[dict[str, Any]]) -> dict[str, Any]:
        results = self.sb.evaluate_many([Job(**j) for j in jobs])
        return {"results": [_result_to_wire(r) for r in results], "restarts": self.sb.restarts}

    def close(self) -> None:
        self.sb.close()


_RemoteActor = ray.remote(_SandboxActor)


def _job_to_wire(job: Job) -> dict[str, Any]:
    return {"program": job.program, "exprs": list(job.exprs), "seed": int(job.seed),
            "timeout_s": None if job.timeout_s is None else float(job.timeout_s), "mode": job.mode,
            "capture_output": bool(job.capture_output), "filename": str(job.filename)}


def _result_to_wire(r: Result) -> dict[str, Any]:
    return {"status": r.status, "values": [v.text for v in r.values], "error": r.error,
            "duration_s": float(r.duration_s), "stdout": r.stdout, "stderr": r.stderr,
            "stdout_truncated": bool(r.stdout_truncated), "stderr_truncated": bool(r.stderr_truncated),
            "worker": int(r.worker)}


def _result_from_wire(d: dict[str, Any], offset: int) -> Result:
    status = d.get("status")
    if status not in STATUSES:
        return Result("error", error=f"ProtocolError: bad status {status!r}", worker=offset)
    error = d.get("error")
    return Result(
        status=status,
        values=[Value(str(t)) for t in d.get("values") or []],
        error=None if error is None else str(error),
        duration_s=float(d.get("duration_s") or 0.0),
        stdout=str(d.get("stdout", "")),
        stderr=str(d.get("stderr", "")),
        stdout_truncated=bool(d.get("stdout_truncated")),
        stderr_truncated=bool(d.get("stderr_truncated")),
        worker=offset + max(0, int(d.get("worker", 0))),
    )


# ---- connecting to Ray: start a local instance only when asked, shut down only that -----------

_ray_lock = threading.Lock()
_ray_state = {"started": False, "users": 0}


def _acquire_ray(address: str | None, num_cpus: int, init_kwargs: dict[str, Any]) -> bool:
    """Make sure this process is connected to Ray; True when the connection counts as ours."""
    with _ray_lock:
        if ray.is_initialized():
            if _ray_state["started"]:
                _ray_state["users"] += 1
                return True
            return False
        if address:  # "auto", "host:port" or "ray://host:port": a running cluster
            ray.init(address=address, logging_level=logging.WARNING, **init_kwargs)
            return False
        opts: dict[str, Any] = {"num_cpus": num_cpus, "include_dashboard": False,
                                "logging_level": logging.WARNING, "log_to_driver": False}
        opts.update(init_kwargs)
        ray.init(address="local", **opts)
        _ray_state.update(started=True, users=1)
        return True


def _release_ray() -> None:
    with _ray_lock:
        _ray_state["users"] -= 1
        if _ray_state["users"] <= 0 and _ray_state["started"]:
            _ray_state.update(started=False, users=0)
            if ray.is_initialized():
                ray.shutdown()


# ---- the driver --------------------------------------------------------------------------------


@dataclass
class _Chunk:
    slot: int
    idxs: list[int]
    budget_s: float


@dataclass
class _Slot:
    """One actor position: the actor there now and the chunks sent to it, oldest first."""

    index: int
    workers: int
    offset: int  # global index of its first worker
    actor: Any
    queue: deque = field(default_factory=deque)  # ObjectRefs, in submission order
    head_since: float = 0.0  # when the oldest chunk in the queue could start running
    restarts: int = 0  # its local pool's worker restarts, as last reported


def _call_each_and_wait(handles: list[Any], method: str) -> None:
    """Call ``method`` on every actor and wait (bounded) for all of them; a dead actor is skipped."""
    refs = []
    for a in handles:
        try:
            refs.append(getattr(a, method).remote())
        except RayError:
            pass
    if refs:
        ray.wait(refs, num_returns=len(refs), timeout=CLOSE_TIMEOUT_S)


class RaySandbox(PoolFront):
    """:class:`~sandbox.pool.Sandbox` with its workers in Ray actors, possibly on many nodes.

    ``workers`` local workers in all, spread over ``actors`` actors (default: one worker per actor);
    each actor reserves one CPU per worker. ``address``: ``None``/``""`` starts a local Ray instance
    (unless this process is already connected), ``"auto"`` or an address joins a running cluster.
    ``actor_options`` go to ``.options()`` of every actor (e.g. ``resources``, ``memory``,
    ``runtime_env``); ``ray_init_kwargs`` to ``ray.init``. The other keyword arguments (``strict``,
    ``disk_mb``, ``preload``, ...) are the local pool's and apply in every actor.
    """

    def __init__(
        self,
        workers: int = 2,
        timeout_s: float = 5.0,
        memory_mb: int = 512,
        *,
        address: str | None = None,
        actors: int | None = None,
        actor_options: dict[str, Any] | None = None,
        ray_init_kwargs: dict[str, Any] | None = None,
        start_timeout_s: float = START_TIMEOUT_S,
        **sandbox_kwargs: Any,
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be >= 1")
        if timeout_s <= 0:
            raise ValueError("timeout_s must be > 0")
        if memory_mb < 16:
            raise ValueError("memory_mb must be >= 16")
        n_actors = workers if actors is None else int(actors)
        if not 1 <= n_actors <= workers:
            raise ValueError(f"actors must be between 1 and workers ({workers}), got {actors}")
        self.workers = int(workers)
        self.timeout_s = float(timeout_s)
        self.memory_mb = int(memory_mb)
        self._args = (self.timeout_s, self.memory_mb, dict(sandbox_kwargs))
        self._actor_options = {"max_restarts": 0, "max_task_retries": 0, "scheduling_strategy": "SPREAD",
                               **(actor_options or {})}
        split = [workers // n_actors + (i < workers % n_actors) for i in range(n_actors)]
        self._lock = threading.Lock()
        self._closed = False
        self._replaced = 0
        self._dead_restarts = 0
        self._owns_ray = _acquire_ray(address, max(os.cpu_count() or 1, workers), dict(ray_init_kwargs or {}))
        self._handles: list[Any] = []  # shared with the finalizer: every live actor this pool created
        self._finalizer = weakref.finalize(self, RaySandbox._shutdown, self._handles, self._owns_ray)
        atexit.register(self._finalizer)
        self._slots: list[_Slot] = []
        try:
            offset = 0
            for i, w in enumerate(split):
                self._slots.append(_Slot(i, w, offset, self._new_actor(w)))
                offset += w
            refs = [s.actor.info.remote() for s in self._slots]
            t0 = time.monotonic()
            if len(ray.wait(refs, num_returns=len(refs), timeout=min(5.0, start_timeout_s))[0]) < len(refs):
                self._log_slow_start()
            infos = ray.get(refs, timeout=max(0.1, start_timeout_s - (time.monotonic() - t0)))
        except GetTimeoutError:
            self._finalizer()
            raise SandboxError(
                f"Ray could not start {n_actors} sandbox actors within {start_timeout_s:.0f} s: does the "
                f"cluster have room for them? (free now: {_resources(ray.available_resources)}; "
                f"asked per actor: {self._actor_resources(split[0])})") from None
        except RayError as exc:
            self._finalizer()
            raise SandboxError(f"a sandbox actor failed to start: {_short(exc, 2000)}") from None
        except BaseException:
            self._finalizer()
            raise
        self.actor_info: list[dict[str, Any]] = infos
        self.layers = _merge_layers([i["layers"] for i in infos])
        degraded = self.inactive_layers
        if degraded:  # each actor's own pool already refused to start if strict
            log.warning("ray sandbox running DEGRADED on at least one actor, inactive layers: %s",
                        "; ".join(f"{k} ({self.layers[k]['detail']})" for k in degraded))

    # ------------------------------------------------------------------------------------------

    @property
    def active_layers(self) -> list[str]:
        return [k for k, v in self.layers.items() if v["active"]]

    @property
    def inactive_layers(self) -> list[str]:
        return [k for k, v in self.layers.items() if v["active"] is False]

    @property
    def restarts(self) -> int:
        """Replaced actors plus the restarts of the actors' local workers."""
        return self._replaced + self._dead_restarts + sum(s.restarts for s in self._slots)

    @property
    def actor_handles(self) -> list[Any]:
        return [s.actor for s in self._slots]

    @property
    def worker_pids(self) -> list[int]:
        """The local workers' pids, each on its actor's node (asks the actors)."""
        infos = ray.get([s.actor.info.remote() for s in self._slots], timeout=START_TIMEOUT_S)
        return [p for i in infos for p in i["worker_pids"]]

    # ------------------------------------------------------------------------------------------

    def _actor_resources(self, workers: int) -> dict[str, Any]:
        opts = {"num_cpus": workers, **self._actor_options}
        return {k: v for k, v in opts.items() if k in ("num_cpus", "num_gpus", "memory", "resources")}

    def _log_slow_start(self) -> None:
        """Ray queues actors it cannot place yet; say so early rather than only at the timeout."""
        log.warning("sandbox: still waiting for %d Ray actors to start (each asks for %s; free in the "
                    "cluster now: %s)", len(self._slots), self._actor_resources(self._slots[0].workers),
                    _resources(ray.available_resources))

    def _new_actor(self, workers: int) -> Any:
        opts = {"num_cpus": workers, **self._actor_options}
        actor = _RemoteActor.options(**opts).remote(workers, *self._args)
        self._handles.append(actor)
        return actor

    @staticmethod
    def _shutdown(handles: list[Any], owns_ray: bool) -> None:
        """Close every actor's local pool (so its workers and cgroups go), then kill the actors."""
        try:
            if ray.is_initialized() and handles:
                _call_each_and_wait(handles, "close")
                # ray.kill alone is asynchronous (it travels through the GCS while calls go straight to
                # the actor), so a call made right after close() could still be served. Ending each actor
                # from its own queue and waiting for that makes close() return only once they are gone.
                _call_each_and_wait(handles, "__ray_terminate__")
                for a in handles:
                    try:
                        ray.kill(a)  # whatever did not end in time
                    except (RayError, ValueError):
                        pass
            handles.clear()
        finally:
            if owns_ray:
                _release_ray()

    def _chunk_size(self, n: int) -> int:
        per = math.ceil(n / (len(self._slots) * CHUNKS_PER_ACTOR))
        most = max(s.workers for s in self._slots)
        return max(1, min(MAX_CHUNK, max(per, most * _pool.PIPELINE_DEPTH)))

    def _budget(self, jobs: list[Job]) -> float:
        return ACTOR_GRACE_S + sum((j.timeout_s or self.timeout_s) + _pool.WATCHDOG_GRACE_S for j in jobs)

    def _run(self, jobs: list[Job]) -> list[Result]:
        results: list[Result | None] = [None] * len(jobs)
        attempts = [0] * len(jobs)
        pending: deque[int] = deque(range(len(jobs)))
        chunks: dict[Any, _Chunk] = {}
        size = self._chunk_size(len(jobs))
        remaining = len(jobs)
        try:
            while remaining:
                for s in self._slots:
                    while pending and len(s.queue) < IN_FLIGHT:
                        idxs = [pending.popleft() for _ in range(min(size, len(pending)))]
                        ref = s.actor.run.remote([_job_to_wire(jobs[i]) for i in idxs])
                        if not s.queue:
                            s.head_since = time.monotonic()
                        s.queue.append(ref)
                        chunks[ref] = _Chunk(s.index, idxs, self._budget([jobs[i] for i in idxs]))
                ready, _ = ray.wait(list(chunks), num_returns=1, timeout=POLL_S)
                for ref in ready:
                    chunk = chunks.get(ref)
                    if chunk is None:  # its actor was already written off
                        continue
                    s = self._slots[chunk.slot]
                    try:
                        reply = ray.get(ref, timeout=CLOSE_TIMEOUT_S)
                        if len(reply["results"]) != len(chunk.idxs):
                            raise SandboxError(f"{len(reply['results'])} results for {len(chunk.idxs)} jobs")
                    except (RayError, SandboxError) as exc:
                        remaining -= self._replace(s, chunks, results, attempts, pending, _short(exc))
                        continue
                    del chunks[ref]
                    s.queue.remove(ref)
                    s.head_since = time.monotonic()
                    s.restarts = int(reply["restarts"])
                    for i, d in zip(chunk.idxs, reply["results"]):
                        results[i] = _result_from_wire(d, s.offset)
                    remaining -= len(chunk.idxs)
                now = time.monotonic()
                for s in self._slots:
                    if s.queue and now - s.head_since > chunks[s.queue[0]].budget_s:
                        remaining -= self._replace(s, chunks, results, attempts, pending, "stopped answering")
        except BaseException:
            for ref in chunks:  # do not leave the actors busy with a batch nobody waits for
                try:
                    ray.cancel(ref, force=False)
                except (RayError, TypeError, ValueError):
                    pass
            raise
        return results  # type: ignore[return-value]

    def _replace(self, s: _Slot, chunks: dict, results: list, attempts: list[int], pending: deque,
                 why: str) -> int:
        """Write off a dead or hung actor: rerun its jobs once (front of the queue, in order), report
        those already lost once ``killed``, and put a fresh actor in its place."""
        done = 0
        rerun: list[int] = []
        elapsed = time.monotonic() - s.head_since
        for ref in s.queue:
            for i in chunks.pop(ref).idxs:
                attempts[i] += 1
                if attempts[i] >= MAX_ATTEMPTS:
                    results[i] = Result("killed", error=f"WorkerDied: ray actor {why}", duration_s=elapsed,
                                        worker=s.offset)
                    done += 1
                else:
                    rerun.append(i)
        pending.extendleft(reversed(rerun))
        s.queue.clear()
        log.warning("sandbox ray actor %d: %s; starting a new one", s.index, why)
        try:
            ray.kill(s.actor)
        except (RayError, ValueError):
            pass
        self._handles.remove(s.actor)
        self._dead_restarts += s.restarts
        s.restarts = 0
        s.actor = self._new_actor(s.workers)
        self._replaced += 1
        return done


def _merge_layers(per_actor: list[dict[str, dict]]) -> dict[str, dict]:
    """A layer counts as active only if it is active in every actor (the weakest node decides)."""
    merged: dict[str, dict] = {}
    for layers in per_actor:
        for name, v in layers.items():
            cur = merged.get(name)
            if cur is None or (cur["active"] is not False and v["active"] is False) or (
                    cur["active"] is None and v["active"]):
                merged[name] = dict(v)
    return merged


def _short(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:limit]}"


def _resources(query: Any) -> dict:
    try:
        return {k: v for k, v in query().items() if not k.startswith("node:")}
    except Exception:  # noqa: BLE001 - diagnostics only
        return {}
