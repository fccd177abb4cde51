"""Process attacks: running commands, forking, fork bombs, daemons that try to outlive the job,
signals aimed at the zygote or everything, and ptrace. The zygote and the pool must come through
untouched (same worker pid, ``restarts`` unchanged) and nothing may remain in the process table."""

from __future__ import annotations

import os
import subprocess
import uuid

import pytest

from tests.sandbox.conftest import (
    assert_job_gone,
    need,
    need_any,
    pid_alive,
    run,
    same_worker,
    val,
    zygote_children,
)

# Every job reports its own pid (the sandbox shares the host pid namespace) so the test can
# look for it and its session in the host process table afterwards.
PID = "import os\n_job_pid = os.getpid()\n"


def _attempt(body: str) -> str:
    indented = "\n".join("    " + line for line in body.strip().splitlines())
    return PID + f"try:\n{indented}\n    x = ('ran', None)\nexcept BaseException as exc:\n    x = ('failed', type(exc).__name__)\n"


def _check_gone(sb, res) -> None:
    assert res.status in ("ok", "error", "timeout", "killed", "memory")
    if res.status == "ok" and len(res.values) > 1:
        assert_job_gone(res.values[1].to_python(), sb)
    for w in sb.worker_pids:
        assert zygote_children(w) == []


@pytest.mark.parametrize(
    "body",
    [
        "import subprocess\nsubprocess.run(['/bin/sh', '-c', 'touch {m}'], check=True)",
        "import subprocess\nsubprocess.Popen(['/usr/bin/touch', '{m}']).wait()",
        "import os\nos.posix_spawn('/bin/sh', ['sh', '-c', 'touch {m}'], {{}})",
        "import os\nos.posix_spawnp('touch', ['touch', '{m}'], {{}})",
        "import os, sys\nos.execv(sys.executable, [sys.executable, '-c', 'open(\"{m}\", \"w\")'])",
        "import os\nos.execvp('touch', ['touch', '{m}'])",
        "import os\nassert os.fork() != 0 or open('{m}', 'w')",
        "import os\nos.forkpty()",
        "import pty\npty.spawn(['/bin/sh', '-c', 'touch {m}'])",
        "import multiprocessing as mp\np = mp.Process(target=open, args=('{m}', 'w')); p.start(); p.join()",
        "import concurrent.futures as cf\ncf.ProcessPoolExecutor(1).submit(open, '{m}', 'w').result()",
        "import ctypes\nlibc = ctypes.CDLL(None)\nassert libc.fork() == -1\nassert libc.vfork() == -1",
        "import ctypes\nlibc = ctypes.CDLL(None)\nassert libc.syscall(56, 17, 0, 0, 0, 0) < 0  # raw clone(SIGCHLD)",
        "import ctypes\nlibc = ctypes.CDLL(None)\nassert libc.syscall(435, 0, 0) < 0  # raw clone3",
    ],
)
def test_no_process_can_be_created(sb, body):
    need(sb, "seccomp")
    marker = f"/tmp/azr-marker-{uuid.uuid4().hex}"
    prog = _attempt(body.format(m=marker)) + "import os\nx = (x, os.path.exists(" + repr(marker) + "))\n"
    with same_worker(sb):
        res = run(sb, prog, ["x", "_job_pid"])
        assert res.status in ("ok", "error"), (res.status, res.error)
        if res.status == "ok":
            (outcome, _why), created = val(res)
            assert not created, "a child process ran and created the marker"
            if "assert" not in body:
                assert outcome == "failed"
        _check_gone(sb, res)
    assert not os.path.exists(marker)


def test_os_system_fails_without_creating_a_process(sb):
    need(sb, "seccomp")
    marker = f"/tmp/azr-marker-{uuid.uuid4().hex}"
    prog = PID + f"import os\nrc = os.system('touch {marker}')\nx = (rc, os.path.exists({marker!r}))"
    with same_worker(sb):
        res = run(sb, prog, ["x", "_job_pid"])
        rc, created = val(res)
        assert rc != 0 and not created
        _check_gone(sb, res)
    assert not os.path.exists(marker)


def test_libc_system_fails(sb):
    need(sb, "seccomp")
    marker = f"/tmp/azr-marker-{uuid.uuid4().hex}"
    prog = PID + f"import ctypes, os\nrc = ctypes.CDLL(None).system(b'touch {marker}')\nx = (rc, os.path.exists({marker!r}))"
    with same_worker(sb):
        res = run(sb, prog, ["x", "_job_pid"])
        rc, created = val(res)
        assert rc != 0 and not created
        _check_gone(sb, res)


def test_fork_bomb_is_contained(sb):
    need(sb, "seccomp")
    prog = PID + """
import os
n = 0
for _ in range(10000):
    try:
        if os.fork() == 0:
            while True:
                os.fork()
        n += 1
    except OSError:
        pass
x = n
"""
    with same_worker(sb):
        res = run(sb, prog, ["x", "_job_pid"], timeout_s=5)
        assert val(res) == 0
        _check_gone(sb, res)


def test_thread_bomb_ends_with_the_job(sb):
    prog = PID + """
import threading, time
started = 0
def spin():
    while True:
        time.sleep(0.01)
for _ in range(200):
    try:
        threading.Thread(target=spin).start()  # non-daemon: would keep a normal interpreter alive
        started += 1
    except RuntimeError:
        break
x = started
"""
    with same_worker(sb):
        res = run(sb, prog, ["x", "_job_pid"])
        assert val(res) > 0
        assert res.duration_s < 1.5, "non-daemon threads held the job open"
        _check_gone(sb, res)


def test_daemon_cannot_outlive_the_job(sb):
    """Every trick to leave something running: threads, fork+setsid, double fork, nohup."""
    marker = f"/tmp/azr-marker-{uuid.uuid4().hex}"
    prog = PID + f"""
import os, subprocess, threading, time
def later():
    time.sleep(0.5)
    open({marker!r}, 'w').write('still alive')
threading.Thread(target=later, daemon=True).start()
tries = []
for attempt in (
    lambda: os.setsid(),
    lambda: os.setpgid(0, 0),
    lambda: subprocess.Popen(['nohup', 'sleep', '60'], start_new_session=True),
    lambda: os.fork() or (os.fork() or os._exit(0)),
):
    try:
        attempt()
        tries.append('ok')
    except OSError as exc:
        tries.append(type(exc).__name__)
x = tries
"""
    with same_worker(sb):
        res = run(sb, prog, ["x", "_job_pid"])
        assert res.status == "ok", res.error
        _check_gone(sb, res)
        # the daemon thread's deadline passes: had anything of the job survived, the marker would appear
        # in the scratch that the next job sees (the cleaner ran before it)
        later = run(sb, f"import os, time\ntime.sleep(0.6)\nx = os.path.exists({marker!r})")
        assert val(later) is False
    assert not os.path.exists(marker)


# ----------------------------------------------------------------------------------------------
# signals


@pytest.mark.parametrize(
    "body",
    [
        "os.kill(os.getppid(), signal.SIGKILL)",
        "os.kill(os.getppid(), signal.SIGTERM)",
        "os.kill(os.getppid(), signal.SIGSTOP)",
        "os.kill(0, signal.SIGKILL)",
        "os.kill(-1, signal.SIGKILL)",
        "os.killpg(os.getpgid(os.getppid()), signal.SIGKILL)",
        "os.killpg(os.getppid(), signal.SIGKILL)",
        "os.killpg(0, signal.SIGKILL)",
        "[os.kill(p, signal.SIGKILL) for p in range(os.getppid() - 5, os.getppid() + 5) if p != os.getpid()]",
        "signal.pidfd_send_signal(os.pidfd_open(os.getppid()), signal.SIGKILL)",
        "import ctypes\nassert ctypes.CDLL(None).kill(os.getppid(), 9) == -1\nassert ctypes.CDLL(None).kill(-1, 9) == -1",
        "import ctypes\nassert ctypes.CDLL(None).syscall(62, os.getppid(), 9) == -1  # raw kill",
        "import ctypes\nassert ctypes.CDLL(None).syscall(234, os.getppid(), os.getppid(), 9) == -1  # raw tgkill",
    ],
)
def test_signals_cannot_reach_the_zygote_or_anything_else(sb, body):
    need_any(sb, "seccomp", "landlock")
    zygote = sb.worker_pids[0]
    prog = PID + "import os, signal\n" + _attempt(body).replace(PID, "")
    with same_worker(sb):
        res = run(sb, prog, ["x", "_job_pid", "os.getppid()"])
        assert res.status in ("ok", "error", "killed"), (res.status, res.error)
        if res.status == "ok":  # inside the worker's PID namespace the zygote is not visible at all
            pid_ns = sb.layers.get("pid-ns", {}).get("active")
            assert res.values[2].to_python() == (0 if pid_ns else zygote)
            if "assert" not in body:
                assert res.values[0].to_python()[0] == "failed"
        assert pid_alive(zygote)
    assert pid_alive(os.getpid())


def test_job_signalling_itself_is_reported_not_fatal_to_the_worker(sb):
    with same_worker(sb):
        res = run(sb, "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\nx = 1")
        assert res.status in ("killed", "error")


# ----------------------------------------------------------------------------------------------
# ptrace and friends


@pytest.mark.parametrize(
    "body",
    [
        "libc.ptrace(16, os.getppid(), 0, 0)  # PTRACE_ATTACH",
        "libc.ptrace(0x4206, os.getppid(), 0, 0)  # PTRACE_SEIZE",
        "libc.ptrace(0, 0, 0, 0)  # PTRACE_TRACEME",
        "libc.syscall(310, os.getppid(), 0, 0, 0, 0, 0)  # process_vm_readv",
        "libc.syscall(438, 0, 0, 0)  # pidfd_getfd",
    ],
)
def test_ptrace_and_cross_process_memory_access_fail(sb, body):
    need_any(sb, "seccomp")
    prog = f"import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\nrc = {body}\nx = (rc, ctypes.get_errno())"
    with same_worker(sb):
        rc, errno_ = val(run(sb, prog))
    assert rc == -1 and errno_ != 0


def test_zygote_memory_is_not_readable_through_proc(sb):
    need(sb, "mount-ns")
    prog = "import os\ntry:\n    x = len(open(f'/proc/{os.getppid()}/mem', 'rb').read(1))\nexcept OSError as e:\n    x = type(e).__name__"
    assert val(run(sb, prog)) in ("FileNotFoundError", "PermissionError")


def test_job_runs_as_an_unprivileged_user(sb):
    need(sb, "uid-drop")
    prog = "import os\nx = (os.getuid(), os.geteuid(), os.getgid(), os.getgroups())"
    uid, euid, gid, groups = val(run(sb, prog))
    assert uid == euid == gid == 65534 and groups == []


# ----------------------------------------------------------------------------------------------
# same-uid process controls that need no signal and no ptrace: rlimits, priority, scheduling

_RETUNE = """
import ctypes, os, resource
libc = ctypes.CDLL(None, use_errno=True)
done = []
def attempt(name, fn):
    try:
        rc = fn()
        if rc is None or rc == 0 or isinstance(rc, tuple):  # prlimit returns the old limits
            done.append(name)
    except OSError:
        pass
for pid in TARGETS:
    attempt('prlimit-nofile', lambda: resource.prlimit(pid, resource.RLIMIT_NOFILE, (5, 5)))
    attempt('prlimit-as', lambda: resource.prlimit(pid, resource.RLIMIT_AS, (64 << 20, 64 << 20)))
    attempt('prlimit-cpu', lambda: resource.prlimit(pid, resource.RLIMIT_CPU, (3600, 3600)))
    attempt('setpriority', lambda: libc.setpriority(0, pid, 19))
    attempt('sched_idle', lambda: os.sched_setscheduler(pid, os.SCHED_IDLE, os.sched_param(0)))
    attempt('affinity', lambda: os.sched_setaffinity(pid, {0}))
    attempt('ioprio', lambda: libc.syscall(251, 1, pid, (3 << 13) | 7))  # ioprio_set IDLE class
x = done
"""


def _process_settings(pid: int) -> tuple:
    with open(f"/proc/{pid}/limits") as fh:
        limits = fh.read()
    with open(f"/proc/{pid}/stat") as fh:
        nice = fh.read().rsplit(")", 1)[1].split()[16]
    return limits, nice, os.sched_getscheduler(pid), sorted(os.sched_getaffinity(pid))


def test_job_cannot_retune_its_zygote(fresh_sb):
    need(fresh_sb, "seccomp")
    zygote = fresh_sb.worker_pids[0]
    before = _process_settings(zygote)
    with same_worker(fresh_sb):
        # the zygote's host pid and whatever the job sees as its parent (0 inside a PID namespace,
        # where prlimit(0) means the job itself, which is allowed)
        res = run(fresh_sb, _RETUNE.replace("TARGETS", f"[{zygote}] + [p for p in [os.getppid()] if p]"))
        assert res.status == "ok", res.error
        assert val(res) == [], f"the job changed its zygote: {val(res)}"
        assert _process_settings(zygote) == before


def test_job_cannot_retune_host_processes_with_its_uid(sb):
    need(sb, "seccomp")
    uid = 65534 if os.geteuid() == 0 else os.getuid()
    kw = {"user": uid, "group": uid} if os.geteuid() == 0 else {}
    helper = subprocess.Popen(["sleep", "30"], **kw)
    try:
        before = _process_settings(helper.pid)
        res = run(sb, _RETUNE.replace("TARGETS", f"[{helper.pid}]"))
        assert res.status == "ok", res.error
        changed = _process_settings(helper.pid) != before
        assert val(res) == [] and not changed, f"the job changed a host process: {val(res)}"
    finally:
        helper.kill()
        helper.wait()
