"""Faults: jobs that kill their process, workers killed from outside, hangs, unclosed pools."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from sandbox import Job, Sandbox

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _is_ns_init(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as fh:
            ids = next((line.split()[1:] for line in fh if line.startswith("NSpid:")), [])
        return len(ids) > 1 and ids[-1] == "1"
    except OSError:
        return False


def _children(pid: int) -> list[int]:
    """The zygote's job processes (not its PID namespace's init)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as fh:
            return [int(x) for x in fh.read().split() if not _is_ns_init(int(x))]
    except OSError:
        return []


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture
def sb():
    with Sandbox(workers=1, timeout_s=5.0, memory_mb=128) as box:
        yield box


def test_segfault_through_ctypes_is_killed_and_next_job_runs(sb):
    out = sb.evaluate("import ctypes\nctypes.string_at(0)", ["1"])
    assert out.status == "killed" and "SIGSEGV" in out.error
    assert sb.evaluate("x = 2", ["x + 1"]).values[0].text == "3"
    assert sb.restarts == 0


RT_SIGNAL_SELF_KILL = r'''
import ctypes, time
libc = ctypes.CDLL(None, use_errno=True)
class sigevent(ctypes.Structure):  # struct sigevent: value, signo, notify (SIGEV_SIGNAL = 0), padding
    _fields_ = [("value", ctypes.c_void_p), ("signo", ctypes.c_int), ("notify", ctypes.c_int),
                ("pad", ctypes.c_char * 48)]
class itimerspec(ctypes.Structure):
    _fields_ = [("interval", ctypes.c_long * 2), ("value", ctypes.c_long * 2)]
timer = ctypes.c_void_p()
assert libc.timer_create(1, ctypes.byref(sigevent(None, 40, 0)), ctypes.byref(timer)) == 0
assert libc.timer_settime(timer, 0, ctypes.byref(itimerspec((0, 0), (0, 1000000))), None) == 0
time.sleep(2)
'''


def test_job_killed_by_a_realtime_signal_keeps_its_worker(sb):
    # kill() is denied, but a POSIX timer still delivers a signal the job picks; signal 40 has no
    # name in signal.Signals, which once crashed the zygote that reported it
    out = sb.evaluate(RT_SIGNAL_SELF_KILL, ["1"])
    assert out.status == "killed" and out.error == "killed by signal 40"
    assert sb.restarts == 0 and sb.evaluate("x = 2", ["x + 1"]).values[0].text == "3"


def test_job_killed_from_outside_is_reported_killed(sb):
    zygote = sb.worker_pids[0]
    result = {}
    t = threading.Thread(target=lambda: result.update(r=sb.evaluate("while True:\n    pass", ["1"])))
    t.start()
    deadline = time.time() + 5
    while not _children(zygote) and time.time() < deadline:
        time.sleep(0.01)
    (job,) = _children(zygote)
    os.kill(job, signal.SIGKILL)
    t.join(10)
    assert result["r"].status == "killed" and "SIGKILL" in result["r"].error
    assert sb.evaluate("", ["'still fine'"]).values[0].text == "'still fine'"


def test_worker_killed_from_outside_is_replaced(sb):
    old = sb.worker_pids[0]
    result = {}
    t = threading.Thread(target=lambda: result.update(r=sb.evaluate("while True:\n    pass", ["1"])))
    t.start()
    deadline = time.time() + 5
    while not _children(old) and time.time() < deadline:
        time.sleep(0.01)
    job = _children(old)[0]
    os.kill(old, signal.SIGKILL)
    t.join(10)
    assert result["r"].status == "killed"
    assert sb.restarts == 1 and sb.worker_pids[0] != old
    deadline = time.time() + 5
    while _alive(job) and time.time() < deadline:
        time.sleep(0.02)
    assert not _alive(job), "the job must die with its worker (PDEATHSIG)"
    assert sb.evaluate("", ["40 + 2"]).values[0].text == "42"


def test_kernel_oom_kill_is_reported_killed():
    # Files in the scratch tmpfs are memory that RLIMIT_AS does not see; the per-worker memory
    # cgroup caps them, and past the cap the kernel's OOM killer ends the job (or its worker).
    with Sandbox(workers=1, timeout_s=20.0, memory_mb=64, disk_mb=4096) as box:
        if not box.layers["memory-cgroup"]["active"]:
            pytest.skip("no memory cgroup on this host: " + box.layers["memory-cgroup"]["detail"])
        prog = textwrap.dedent("""
            chunk = b'x' * (1 << 20)
            for i in range(2000):
                with open(f'/tmp/f{i}', 'wb') as fh:
                    for _ in range(8):
                        fh.write(chunk)
        """)
        out = box.evaluate(prog, ["1"])
        assert out.status == "killed", out
        assert box.evaluate("", ["1"]).status == "ok"


def test_hung_worker_is_killed_by_the_watchdog(monkeypatch):
    import sandbox.pool as pool

    monkeypatch.setattr(pool, "WATCHDOG_GRACE_S", 0.5)
    with Sandbox(workers=1, timeout_s=1.0, memory_mb=64) as box:
        os.kill(box.worker_pids[0], signal.SIGSTOP)  # the zygote stops answering
        t = time.time()
        out = box.evaluate("", ["1"])
        assert out.status == "killed" and "hung" in out.error
        assert time.time() - t < 10
        assert box.evaluate("", ["1"]).status == "ok"


def test_queued_jobs_of_a_dead_worker_are_rerun_not_lost():
    with Sandbox(workers=1, timeout_s=5.0, memory_mb=64) as box:
        pid = box.worker_pids[0]
        threading.Timer(0.3, lambda: os.kill(pid, signal.SIGKILL)).start()
        jobs = [Job("import time\ntime.sleep(1)", ["'slow'"])] + [Job("", [str(i)]) for i in range(5)]
        outs = box.evaluate_many(jobs)
        assert outs[0].status == "killed"
        assert [o.values[0].text for o in outs[1:]] == [str(i) for i in range(5)]


@pytest.mark.parametrize("loop", ["auto", "python"])
@pytest.mark.parametrize("ending", ["exit", "sigkill"])
def test_a_pool_that_ends_without_close_leaves_no_process(tmp_path, ending, loop):
    """A script exits without ``close()`` while a job runs (the atexit hook cleans up), or is killed
    outright (no hook runs: the zygotes must notice the hang-up on their stdin, kill the job and
    exit rather than wait out its 30-second timeout). Either way nothing may remain."""
    script = tmp_path / "leak.py"
    script.write_text(textwrap.dedent(f"""
        import os, signal, sys, threading, time
        sys.path.insert(0, {ROOT!r})
        from sandbox import Sandbox
        sb = Sandbox(workers=2, timeout_s=30, fork_loop={loop!r})
        threading.Thread(target=sb.evaluate, args=("import time\\ntime.sleep(30)", ["1"]), daemon=True).start()
        def children(pid):
            try:
                return open(f"/proc/{{pid}}/task/{{pid}}/children").read().split()
            except OSError:
                return []
        deadline = time.time() + 10
        while not any(len(children(p)) >= 2 for p in sb.worker_pids) and time.time() < deadline:
            time.sleep(0.01)  # a zygote's children: its PID namespace's init, then the running job
        jobs = [c for p in sb.worker_pids for c in children(p)]
        print(" ".join(map(str, sb.worker_pids + [int(j) for j in jobs])), flush=True)
        if {ending!r} == "sigkill":
            os.kill(os.getpid(), signal.SIGKILL)
    """))
    # Only the first line is read: the zygotes inherit stderr, so waiting for the pipes to close
    # would wait for them.
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True)
    pids = [int(p) for p in proc.stdout.readline().split()]
    assert proc.wait(timeout=30) == (-signal.SIGKILL if ending == "sigkill" else 0)
    proc.stdout.close()
    assert len(pids) >= 5, pids  # two zygotes, their PID namespaces' inits and the running job
    deadline = time.time() + 5
    while any(_alive(p) for p in pids) and time.time() < deadline:
        time.sleep(0.05)
    assert not [p for p in pids if _alive(p)]


def test_pool_never_hangs_on_many_faulty_jobs():
    progs = [
        ("while True:\n    pass", "timeout"),
        ("import ctypes\nctypes.string_at(0)", "killed"),
        ("x = ' ' * (1 << 34)", "memory"),
        ("raise ValueError('boom')", "error"),
        ("", "ok"),
    ]
    with Sandbox(workers=2, timeout_s=0.5, memory_mb=64) as box:
        outs = box.evaluate_many([Job(p, ["1"]) for p, _ in progs * 3])
        assert [o.status for o in outs] == [s for _, s in progs * 3]
        assert box.restarts == 0
