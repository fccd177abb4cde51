"""Determinism (hash seeds, ``random``, ``id()``, time) and leaks between consecutive jobs in one
worker (globals, module attributes, builtins, ``sys.modules``, files, SysV IPC objects)."""

from __future__ import annotations

import random
import time

import pytest

from tests.sandbox.conftest import (
    make_sandbox,
    need,
    need_private_tmp,
    pristine,
    probe,
    run,
    same_worker,
    val,
)

HASHES = "x = (hash('abc'), hash(b'abc'), hash(('abc', 1)), hash(frozenset({'a', 'b'})), list({'q', 'w', 'e', 'r'}))"


def test_hash_seed_is_fixed_across_jobs_workers_and_sandboxes(sb):
    first = val(run(sb, HASHES))
    assert val(run(sb, HASHES)) == first
    with make_sandbox(workers=2) as other:
        outs = other.evaluate_many([(HASHES, ("x",))] * 4)
        assert {o.worker for o in outs} == {0, 1}
        assert all(val(o) == first for o in outs)


def test_random_follows_the_seed(sb):
    prog = "import random\nx = (random.random(), random.randint(0, 10 ** 9), random.sample(range(100), 5))"
    a0, b0 = val(run(sb, prog, seed=0)), val(run(sb, prog, seed=0))
    a1 = val(run(sb, prog, seed=1))
    assert a0 == b0 and a0 != a1
    for seed, got in ((0, a0), (1, a1)):  # exactly what random.seed(seed) gives in a fresh interpreter
        ref = random.Random(seed)
        assert got == (ref.random(), ref.randint(0, 10 ** 9), ref.sample(range(100), 5))
    with make_sandbox() as other:
        assert val(run(other, prog, seed=0)) == a0
        assert val(run(other, prog, seed=1)) == a1


def test_random_state_does_not_carry_over(sb):
    with same_worker(sb):
        first = val(run(sb, "import random\nx = random.random()"))
        run(sb, "import random\nrandom.seed(12345)\n[random.random() for _ in range(100)]\nx = 1")
        assert val(run(sb, "import random\nx = random.random()")) == first


@pytest.mark.parametrize(
    "prog",
    [
        "x = id(object())",
        "x = [id(object()) % 1000 for _ in range(5)]",
        "class O:\n    pass\nobjs = [O() for _ in range(32)]\nfor i, o in enumerate(objs):\n    o.i = i\n"
        "x = [o.i for o in set(objs)]",
    ],
)
def test_identity_dependent_results_follow_the_seed(sb, prog):
    """The validator runs a program under two seeds to catch id()-dependent output: it must differ."""
    s0, s0b, s1 = (val(run(sb, prog, seed=s)) for s in (0, 0, 1))
    assert s0 == s0b, "same seed, same worker: same heap layout"
    assert s0 != s1, "a different seed must perturb the heap layout"


def test_time_is_real_and_moves(sb):
    prog = "import time\nx = (time.time(), time.monotonic_ns())"
    (t1, m1), (t2, m2) = val(run(sb, prog)), val(run(sb, prog))
    assert abs(t1 - time.time()) < 60 and t2 >= t1 and m2 > m1


# ----------------------------------------------------------------------------------------------
# leaks between consecutive jobs in the same worker


@pytest.mark.parametrize(
    "attack",
    [
        "global azr_global\nazr_global = 1\nimport __main__\n__main__.azr_global = 1",
        "import math\nmath.pi = 3",
        "import builtins\nbuiltins.sorted = lambda *a, **k: ['poisoned']\nbuiltins.len = lambda o: -1",
        "import builtins\nbuiltins.azr_evil = True\nbuiltins.__dict__['print'] = None",
        "import sys, types\nsys.modules['azr_poison'] = types.ModuleType('azr_poison')\ndel sys.modules['math']",
        "import json\njson.dumps = lambda *a, **k: '[666]'",
        "import os\nos.environ['AZR_LEAK'] = '1'\nos.putenv('AZR_LEAK2', '1')\nos.chdir('/tmp')\nos.umask(0o777)",
        "import sys\nsys.path.insert(0, '/tmp')\nsys.setrecursionlimit(50)\nopen('/tmp/math.py', 'w').write('pi = 3')",
        "import os\nos.makedirs('/tmp/a/b')\nopen('/tmp/a/b/f', 'w').write('left behind')\nopen('/tmp/.dot', 'w').close()",
        "import resource\nresource.setrlimit(resource.RLIMIT_NOFILE, (3, 3))",
        "import signal\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\nsignal.alarm(1)",
        "import gc\ngc.disable()\ngc.set_threshold(1)",
        "import random\nrandom.seed(99)\nrandom.random = lambda: 0.5",
    ],
)
def test_state_changes_do_not_reach_the_next_job(sb, attack):
    with same_worker(sb):
        res = run(sb, attack + "\nx = 1")
        assert res.status in ("ok", "error"), res.error


# Reads the zygote's whole brk heap as the job inherited it (ctypes.string_at between glibc's
# heap start and the program break); the markers are built at run time so that this program's own
# text does not contain them.
HEAP_SCAN = """
import ctypes
class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                "fsmblks", "uordblks", "fordblks", "keepcost")]
libc = ctypes.CDLL(None)
libc.sbrk.restype = ctypes.c_void_p
libc.mallinfo2.restype = MallInfo2
end = libc.sbrk(0)
size = libc.mallinfo2().arena
heap = ctypes.string_at(end - size, size)
found = [m.decode() for m in (b"AZR_LEAK_" + t for t in (b"PROGRAM", b"RESULT", b"STDOUT")) if m in heap]
x = (found, size > 0)
"""


def test_a_jobs_program_result_and_output_are_not_left_in_the_next_jobs_memory(sb):
    """Every child inherits the zygote's memory: what the zygote held of the previous job (its
    program, the result it forwarded, the output it read) must not be readable there."""
    need(sb, "fork-per-job")
    secret = ("# AZR_LEAK_PROGRAM " + "pad " * 3000 + "\nx = 'AZR_LEAK_' + 'RESULT'\n"
              "print('AZR_LEAK_' + 'STDOUT')\nimport sys\nprint('AZR_LEAK_' + 'STDOUT', file=sys.stderr)")
    with same_worker(sb):
        first = sb.evaluate(secret, ["x"], capture_output=True)
        assert first.ok and "AZR_LEAK_STDOUT" in first.stdout, first
        try:
            assert val(run(sb, HEAP_SCAN)) == ([], True)
        finally:
            run(sb, "x = 1")  # the scan's own result leaves nothing secret behind either


def test_the_zygote_state_survives_a_long_run_of_hostile_jobs(sb):
    need_private_tmp(sb)
    jobs = [(f"import math, builtins\nmath.pi = {i}\nbuiltins.azr_n = {i}\nopen('/tmp/f{i}', 'w').close()", ())
            for i in range(30)]
    with same_worker(sb):
        assert all(r.status == "ok" for r in sb.evaluate_many(jobs))


def _sysv(kind: str) -> tuple[str, str]:
    """(job that leaves a SysV IPC object with data in it, job that looks for it)."""
    head = "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
    if kind == "shm":
        leave = head + (
            "libc.shmat.restype = ctypes.c_void_p\n"
            "sid = libc.shmget(0xA2F, 4096, 0o1600)\n"
            "addr = libc.shmat(sid, None, 0)\n"
            "ctypes.memmove(addr, b'LEAKED', 6)\n"
            "x = sid\n"
        )
        find = head + (
            "libc.shmat.restype = ctypes.c_void_p\n"
            "sid = libc.shmget(0xA2F, 0, 0o600)\n"
            "x = ctypes.string_at(libc.shmat(sid, None, 0), 6) if sid >= 0 else None\n"
        )
    elif kind == "msg":
        leave = head + (
            "q = libc.msgget(0xA2F, 0o1600)\n"
            "buf = ctypes.create_string_buffer(ctypes.c_long(1).value.to_bytes(8, 'little') + b'LEAKED')\n"
            "x = libc.msgsnd(q, buf, 6, 0)\n"
        )
        find = head + (
            "q = libc.msgget(0xA2F, 0o600)\n"
            "buf = ctypes.create_string_buffer(64)\n"
            "n = libc.msgrcv(q, buf, 56, 0, 0o4000) if q >= 0 else -1\n"
            "x = buf.raw[8:8 + n] if n > 0 else None\n"
        )
    else:
        leave = head + "s = libc.semget(0xA2F, 1, 0o1600)\nx = libc.semctl(s, 0, 16, 42)  # SETVAL 42\n"
        find = head + "s = libc.semget(0xA2F, 1, 0o600)\nx = libc.semctl(s, 0, 12) if s >= 0 else None  # GETVAL\n"
    return leave, find


@pytest.mark.parametrize("kind", ["shm", "msg", "sem"])
def test_sysv_ipc_objects_do_not_reach_the_next_job(kind):
    leave, find = _sysv(kind)
    with make_sandbox() as box:
        need(box, "ipc-uts-ns")
        run(box, leave)
        res = run(box, find)
        assert res.status == "error" or val(res) is None, f"the next job found the {kind} object: {res.values}"


def test_ipc_objects_do_not_escape_the_worker():
    """Even where SysV IPC objects survive a job, another zygote and the host must not see them."""
    import ctypes

    leave, find = _sysv("shm")
    with make_sandbox() as first, make_sandbox() as second:
        need(first, "ipc-uts-ns")
        run(first, leave)  # may well be refused (or crash on the refused attach): then there is nothing to find
        libc = ctypes.CDLL(None, use_errno=True)
        assert libc.shmget(0xA2F, 0, 0o600) == -1, "a job's shm segment is visible on the host"
        res = run(second, find)
        assert res.status == "error" or val(res) is None, "another worker found the segment"


@pytest.mark.xfail(strict=True, reason="LEAK (low): the scratch tmpfs lives as long as the worker, and tmpfs numbers "
                   "inodes from a per-mount counter, so a job reading os.stat(new_file).st_ino learns how many files "
                   "earlier jobs in the same worker created (a covert channel between jobs, and a result that "
                   "depends on the previous job). Fix: a fresh tmpfs per job, or accept and document")
def test_inode_numbers_do_not_reveal_previous_jobs(sb):
    need_private_tmp(sb)
    make = "import os\nfor i in range({n}):\n    open(f'/tmp/{{i}}', 'w').close()\nx = 1"
    look = "import os\nopen('/tmp/probe', 'w').close()\nx = os.stat('/tmp/probe').st_ino"
    seen = []
    for n in (0, 500):
        run(sb, make.format(n=n))
        seen.append(val(run(sb, look)))
    assert seen[0] == seen[1], f"inode numbers moved with the previous job's file count: {seen}"


def test_a_second_sandbox_starts_pristine():
    with make_sandbox() as box:
        assert probe(box) == pristine()
