"""Resource attacks: memory bombs, CPU loops (Python and C level, with SIGTERM/SIGXCPU ignored),
huge output and results, thousands of threads, deep recursion, file-descriptor exhaustion.
Each must end in a bounded verdict at about the configured limit and leave the worker serving."""

from __future__ import annotations

import pytest

from tests.sandbox.conftest import make_sandbox, run, same_worker, val

T = 0.5  # per-job timeout for the CPU tests


@pytest.fixture(scope="module")
def small():
    """A tight memory budget makes memory and recursion bombs hit their wall quickly."""
    with make_sandbox(memory_mb=64) as box:
        yield box


@pytest.mark.parametrize(
    "prog",
    [
        "x = bytearray(4 << 30)",
        "x = [0] * (10 ** 10)",
        "x = 'a' * (10 ** 11)",
        "x = []\nwhile True:\n    x.append(bytearray(1 << 20))",
        "x = []\nwhile True:\n    x.append(' ' * 100 + str(len(x)))",
        "import mmap\nm = mmap.mmap(-1, 8 << 30)",
        "import array\nx = array.array('d', bytes(8)) * (10 ** 10)",
    ],
)
def test_memory_bombs_are_stopped(small, prog):
    with same_worker(small):
        res = run(small, prog, timeout_s=10)
        assert res.status in ("memory", "killed", "error"), (res.status, res.error)
        if res.status == "error":  # a refused allocation surfaced as ENOMEM, not MemoryError
            assert res.error.startswith("OSError: [Errno 12]"), res.error
        assert res.duration_s < 10


def test_memory_outside_the_address_space_is_bounded():
    """memfd pages do not count in RLIMIT_AS: 60 descriptors x 16 MiB must still hit a wall."""
    prog = """
import os
fds, total = [], 0
chunk = b'x' * (1 << 20)
try:
    for _ in range(60):
        fd = os.memfd_create('m')
        fds.append(fd)
        for _ in range(16):
            total += os.write(fd, chunk)
except OSError as exc:
    pass
x = total
"""
    with make_sandbox(memory_mb=128) as box:
        res = run(box, prog, timeout_s=10)
        if res.status == "ok":  # the writes failed on their own limit before the memory cap
            assert val(res) <= (128 + 128) << 20, f"a job pinned {val(res) >> 20} MiB in memfds"
        else:
            assert res.status in ("memory", "killed"), (res.status, res.error)
        assert box.restarts == 0, "the job's memory use killed its worker"
        assert val(run(box, "x = 1")) == 1


@pytest.mark.parametrize(
    "prog",
    [
        "while True:\n    pass",
        "x = sum(range(10 ** 15))",
        "x = 10 ** (10 ** 9)",
        "import re\nx = re.match('(a+)+$', 'a' * 40 + 'b')",
        "import signal\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"
        "while True:\n    pass",
        "import signal\nsignal.signal(signal.SIGXCPU, signal.SIG_IGN)\nwhile True:\n    pass",
        "import time\ntime.sleep(3600)",
        "import select\nselect.select([], [], [])",
        "import threading\nthreading.Event().wait()",
        "import threading\n"
        "def spin():\n    while True:\n        pass\n"
        "ts = [threading.Thread(target=spin) for _ in range(4)]\n"
        "[t.start() for t in ts]\n[t.join() for t in ts]",
    ],
)
def test_cpu_and_wall_clock_limits(sb, prog):
    with same_worker(sb):
        res = run(sb, prog, timeout_s=T)
        assert res.status == "timeout", (res.status, res.error)
        assert 0.8 * T <= res.duration_s <= T + 1.0, res.duration_s


def test_a_sandbox_wide_timeout_applies_too():
    with make_sandbox(timeout_s=0.5) as box, same_worker(box):
        res = run(box, "while True:\n    pass")
        assert res.status == "timeout" and 0.4 <= res.duration_s <= 1.5


def test_timeout_follows_the_per_job_setting(sb):
    with same_worker(sb):
        short, default = sb.evaluate_many([("while True:\n    pass", (), 0, 0.3), ("x = 1", ("x",))])
    assert short.status == "timeout" and short.duration_s < 1.0
    assert default.status == "ok"


def test_huge_stdout_and_stderr_come_back_capped(sb):
    prog = "import sys\nfor _ in range(100):\n    print('x' * (1 << 20))\n    sys.stderr.write('e' * (1 << 20))\nx = 1"
    with same_worker(sb):
        res = run(sb, prog, capture_output=True, timeout_s=10)
        assert res.status in ("ok", "error"), (res.status, res.error)
        assert res.stdout_truncated and res.stderr_truncated
        assert 0 < len(res.stdout) <= 64 * 1024 and set(res.stdout) <= {"x", "\n"}
        assert 0 < len(res.stderr) <= 64 * 1024
        assert res.duration_s < 5


def test_huge_output_without_capture_is_discarded(sb):
    with same_worker(sb):
        res = run(sb, "import os\nfor _ in range(100):\n    os.write(1, b'x' * (1 << 20))\nx = 1", timeout_s=10)
        assert val(res) == 1 and res.stdout == ""


def test_output_cap_is_configurable():
    with make_sandbox(max_output_bytes=1000) as box:
        res = run(box, "print('y' * 5000)\nx = 1", capture_output=True)
    assert val(res) == 1 and res.stdout_truncated and len(res.stdout) == 1000


@pytest.mark.parametrize(
    "expr", ["'x' * (10 ** 8)", "list(range(10 ** 6))", "b'\\0' * (10 ** 8)", "{i: i for i in range(10 ** 6)}",
             "10 ** 100000"],
)
def test_huge_results_become_opaque_markers(sb, expr):
    with same_worker(sb):
        res = run(sb, "pass", [expr, "1"], timeout_s=10)
        assert res.status == "ok", res.error
        assert res.values[0].opaque and res.values[0] != res.values[0]
        assert val(res, 1) == 1


def test_deeply_nested_results_become_opaque(sb):
    prog = "x = []\ny = x\nfor _ in range(100000):\n    y.append([])\n    y = y[0]\nc = []\nc.append(c)"
    with same_worker(sb):
        res = run(sb, prog, ["x", "c", "{'k': c}"])
        assert res.status == "ok", res.error
        assert all(v.opaque for v in res.values)


def test_a_thousand_threads_are_contained(sb):
    prog = """
import threading, time
ts, err = [], None
try:
    for _ in range(1000):
        t = threading.Thread(target=time.sleep, args=(0.2,))
        t.start()
        ts.append(t)
except RuntimeError as exc:
    err = str(exc)
for t in ts:
    t.join()
x = len(ts)
"""
    with same_worker(sb):
        res = run(sb, prog, timeout_s=10)
        assert res.status in ("ok", "error", "memory", "killed"), (res.status, res.error)
        if res.status == "ok":
            assert 0 < val(res) <= 1000


@pytest.mark.parametrize(
    "prog",
    [
        "import sys\nsys.setrecursionlimit(10 ** 6)\ndef f(n):\n    return f(n + 1) + 1\nx = f(0)",
        "import sys\nsys.setrecursionlimit(10 ** 6)\nx = eval('(' * 100000 + ')' * 100000)",
        "import sys\nsys.setrecursionlimit(10 ** 6)\nx = []\nfor _ in range(10 ** 6):\n    x = [x]\nx = repr(x)",
        "def f(n):\n    return f(n + 1)\nx = f(0)",
    ],
)
def test_deep_recursion_is_contained(small, prog):
    with same_worker(small):
        res = run(small, prog, timeout_s=10)
        assert res.status in ("killed", "error", "memory"), (res.status, res.error)


def test_file_descriptor_exhaustion_is_contained(sb):
    prog = """
import os
fds = []
try:
    while len(fds) < 100000:
        fds.append(os.open('/dev/null', os.O_RDONLY))
except OSError as exc:
    err = exc.errno
x = len(fds)
"""
    with same_worker(sb):
        assert val(run(sb, prog)) < 1000


def test_thread_count_is_bounded(sb):
    prog = """
import threading
threading.stack_size(32768)
ev = threading.Event()
n = 0
try:
    while n < 1500:
        threading.Thread(target=ev.wait).start()
        n += 1
except RuntimeError:
    pass
ev.set()
x = n
"""
    with same_worker(sb):
        res = run(sb, prog, timeout_s=10)
        assert res.status != "ok" or val(res) <= 1024, f"one job held {val(res)} threads"
