"""Shared fixtures and helpers for the sandbox threat-model battery.

Every test runs a real hostile program through the real sandbox and then checks three things: the
attack failed or was contained, the host is untouched, and the next job in the same worker sees
a pristine world. ``AZR_TEST_SECRET`` is put into this process's environment at import, before
any Sandbox exists, so a leak of the parent's environment into jobs is detectable.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from sandbox import Result, Sandbox

SECRET = "azr-secret-5d41402abc4b2a76b9719d911017c592"
os.environ["AZR_TEST_SECRET"] = SECRET

NOBODY = 65534

# What a fresh job sees; every "the next job is unaffected" check compares against this.
PROBE = r"""
import builtins, math, os, sys, json, random
def _xattrs(p):
    try:
        return sorted(os.listxattr(p))
    except OSError as exc:
        return ['<' + type(exc).__name__ + '>']
# a job starts in its scratch directory ('/tmp' when the mount namespace is active)
state = {
    'scratch': sorted(os.listdir('.')),
    'scratch_xattrs': _xattrs('.'),
    'scratch_mode': oct(os.stat('.').st_mode & 0o7777),
    'pi': math.pi,
    'sorted': builtins.sorted is sorted and type(sorted).__name__,
    'len': len([1, 2, 3]),
    'dumps': json.dumps([1]),
    'env': sorted(os.environ.items()),
    'uid': (os.getuid(), os.geteuid(), os.getgid()),
    'poisoned': sorted(k for k in sys.modules if 'azr' in k or 'poison' in k),
    'path': list(sys.path),
    'recursionlimit': sys.getrecursionlimit(),
    'random': random.random(),
    'globals': sorted(k for k in globals() if not k.startswith('__')),
    'builtins': sorted(k for k in dir(builtins) if 'azr' in k or 'evil' in k),
}
"""


def make_sandbox(**kw) -> Sandbox:
    """A one-worker sandbox: every job lands in the same zygote, so leaks between jobs show."""
    opts = {"workers": 1, "timeout_s": 2.0, "memory_mb": 256}
    opts.update(kw)
    return Sandbox(**opts)


def probe(sb: Sandbox) -> dict:
    res = sb.evaluate(PROBE, ["state"])
    assert res.status == "ok", res.error
    return res.values[0].to_python()  # type: ignore[return-value]


@functools.lru_cache(maxsize=1)
def pristine() -> dict:
    """The probe's view from the first job of a brand-new sandbox."""
    with make_sandbox() as box:
        return probe(box)


# Every battery that takes ``sb`` or ``fresh_sb`` runs against both serving loops: the default (the C
# loop of sandbox/_forkloop.c, which applies the per-job layers itself) and the Python fallback.
FORK_LOOPS = ["auto", "python"]


@pytest.fixture(scope="module", params=FORK_LOOPS)
def sb(request) -> Iterator[Sandbox]:
    with make_sandbox(fork_loop=request.param) as box:
        yield box


@pytest.fixture(params=FORK_LOOPS)
def fresh_sb(request) -> Iterator[Sandbox]:
    """A private sandbox for attacks that may kill their worker (kept apart from the shared one)."""
    with make_sandbox(fork_loop=request.param) as box:
        yield box


def run(sb: Sandbox, program: str, exprs: tuple[str, ...] | list[str] = ("x",), **kw) -> Result:
    return sb.evaluate(program, list(exprs), **kw)


def val(res: Result, i: int = 0) -> object:
    assert res.status == "ok", (res.status, res.error)
    return res.values[i].to_python()


@contextmanager
def same_worker(sb: Sandbox) -> Iterator[None]:
    """Assert that whatever runs inside leaves the worker alive, unrestarted and pristine."""
    pids, restarts = list(sb.worker_pids), sb.restarts
    yield
    assert sb.restarts == restarts, "the attack killed its worker"
    assert sb.worker_pids == pids, "the worker was replaced"
    assert all(pid_alive(p) for p in pids)
    assert probe(sb) == pristine()
    assert zygote_children(pids[0]) == [], "a job process outlived its job"


def need(sb: Sandbox, *layers: str) -> None:
    """Skip unless every named isolation layer is active on this host."""
    off = [name for name in layers if not sb.layers.get(name, {}).get("active")]
    if off:
        pytest.skip(f"isolation layer(s) not active on this host: {', '.join(off)}")


def need_private_tmp(sb: Sandbox) -> None:
    """Skip attacks written against '/tmp' where it is not the job's private scratch mount."""
    need(sb, "mount-ns")


def need_any(sb: Sandbox, *layers: str) -> None:
    if not any(sb.layers.get(name, {}).get("active") for name in layers):
        pytest.skip(f"none of these isolation layers is active here: {', '.join(layers)}")


# ----------------------------------------------------------------------------------------------
# the host process table


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name: [state, ppid, pgrp, session, ...]."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            data = fh.read()
    except OSError:
        return None
    return data[data.rfind(")") + 2 :].split()


def all_pids() -> list[int]:
    return [int(n) for n in os.listdir("/proc") if n.isdigit()]


def pid_alive(pid: int) -> bool:
    f = _stat_fields(pid)
    return f is not None and f[0] != "Z"


def is_pid_namespace_init(pid: int) -> bool:
    """The zygote's one long-lived child: PID 1 of the worker's PID namespace (it only waits)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("NSpid:"):
                    ids = line.split()[1:]
                    return len(ids) > 1 and ids[-1] == "1"
    except OSError:
        pass
    return False


def zygote_children(pid: int) -> list[int]:
    """Live job processes whose parent is ``pid`` (a zygote between jobs has none besides the
    PID namespace's init)."""
    out = []
    for p in all_pids():
        f = _stat_fields(p)
        if f is not None and int(f[1]) == pid and f[0] != "Z" and not is_pid_namespace_init(p):
            out.append(p)
    return out


def session_members(sid: int) -> list[int]:
    """Processes in session or process group ``sid`` (a job is its own session leader)."""
    out = []
    for p in all_pids():
        f = _stat_fields(p)
        if f is not None and sid in (int(f[2]), int(f[3])):
            out.append(p)
    return out


def uid_of(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("Uid:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def descendants(pid: int) -> list[int]:
    parent = {}
    for p in all_pids():
        f = _stat_fields(p)
        if f is not None:
            parent[p] = int(f[1])
    out, frontier = [], [pid]
    while frontier:
        cur = frontier.pop()
        kids = [p for p, pp in parent.items() if pp == cur]
        out += kids
        frontier += kids
    return out


def _innermost_pid(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as fh:
            ids = next((line.split()[1:] for line in fh if line.startswith("NSpid:")), [])
        return int(ids[-1]) if ids else None
    except (OSError, ValueError):
        return None


def assert_job_gone(job_pid: int, sb: Sandbox) -> None:
    """Nothing from the job's process (or anything it might have started) is still running.

    ``job_pid`` is what the job saw as ``os.getpid()``: inside the worker's PID namespace (when that
    layer is active) it is not a host pid, so the job is looked up by its innermost pid among the
    worker's descendants."""
    if sb.layers.get("pid-ns", {}).get("active"):
        for w in sb.worker_pids:
            same = [p for p in descendants(w) if _innermost_pid(p) == job_pid and pid_alive(p)]
            assert same == [], f"job process {job_pid} (host {same}) outlived its job"
    else:
        assert not pid_alive(job_pid), f"job process {job_pid} outlived its job"
        assert session_members(job_pid) == [], "a process from the job's session survived"
    for w in sb.worker_pids:
        assert zygote_children(w) == [], "the zygote still has a child after the job"
        leftovers = [p for p in descendants(w) if uid_of(p) == NOBODY and not is_pid_namespace_init(p)]
        assert leftovers == [], f"uid {NOBODY} processes under the worker survived: {leftovers}"
