"""Interpreter escapes: ctypes, ``__import__``/``__builtins__`` games, ``sys.modules`` poisoning,
``object.__subclasses__()`` walks and encoded ``exec``. Python-level tricks may well "work" (the
sandbox does not restrict Python itself); the kernel layers must still stop every host effect."""

from __future__ import annotations

import base64
import marshal
import os
import uuid
import zlib

import pytest

from tests.sandbox.conftest import PROBE, need, pristine, run, same_worker, val

HOST_FILE = "/etc/hostname" if os.path.exists("/etc/hostname") else "/etc/passwd"


@pytest.fixture()
def marker():
    path = f"/tmp/azr-marker-{uuid.uuid4().hex}"
    yield path
    assert not os.path.exists(path), "the job created a file on the host"


def test_ctypes_null_dereference_is_killed(sb):
    with same_worker(sb):
        res = run(sb, "import ctypes\nx = ctypes.string_at(0)")
        assert res.status == "killed" and "SIGSEGV" in (res.error or "")


@pytest.mark.parametrize(
    "prog",
    [
        "import ctypes\nctypes.memset(0, 1, 1)",
        "import ctypes\nctypes.cast(1, ctypes.POINTER(ctypes.c_int))[0] = 1",
        "import ctypes\nctypes.CDLL(None).abort()",
        "import ctypes\nctypes.pythonapi.Py_DecRef(ctypes.py_object(None))\nimport gc\ngc.collect()\n"
        "ctypes.pythonapi.Py_FatalError(b'boom')",
        "import sys\nsys.setrecursionlimit(10**6)\nimport ctypes\nf = ctypes.CFUNCTYPE(None)\n"
        "def g():\n    h()\nh = f(g)\nh()",
    ],
)
def test_interpreter_crashes_are_contained(sb, prog):
    with same_worker(sb):
        res = run(sb, prog)
        assert res.status in ("killed", "error"), (res.status, res.error)


def test_ctypes_libc_system_fork_kill_are_contained(sb, marker):
    need(sb, "seccomp")
    prog = f"""
import ctypes, os
libc = ctypes.CDLL(None)
rc_system = libc.system(b'touch {marker}')
rc_fork = libc.fork()
rc_kill = libc.kill(os.getppid(), 9)
rc_kill_all = libc.kill(-1, 9)
x = (rc_system != 0, rc_fork, rc_kill, rc_kill_all, os.path.exists({marker!r}))
"""
    with same_worker(sb):
        assert val(run(sb, prog)) == (True, -1, -1, -1, False)


def test_raw_execve_syscall_fails(sb, marker):
    """A raw syscall skips every Python and libc wrapper; seccomp must still refuse execve."""
    need(sb, "seccomp")
    prog = f"""
import ctypes, platform
if platform.machine() != 'x86_64':
    x = 'skip'
else:
    libc = ctypes.CDLL(None, use_errno=True)
    argv = (ctypes.c_char_p * 4)(b'/bin/sh', b'-c', b'touch {marker}', None)
    rc = libc.syscall(59, b'/bin/sh', argv, None)
    x = (rc, ctypes.get_errno())
"""
    with same_worker(sb):
        got = val(run(sb, prog))
    if got == "skip":
        pytest.skip("x86_64 only")
    assert got[0] == -1


@pytest.mark.parametrize(
    "body",
    [
        "__import__('os').system('touch {m}')",
        "__builtins__.__import__('os').system('touch {m}')",
        "__builtins__.__dict__['__import__']('subprocess').run(['touch', '{m}'])",
        "[c for c in ().__class__.__base__.__subclasses__() if c.__name__ == '_wrap_close'][0]"
        ".__init__.__globals__['system']('touch {m}')",
        "[c for c in object.__subclasses__() if c.__name__ == 'Popen'][0](['touch', '{m}']).wait()",
        "(lambda: 0).__globals__['__builtins__'].__import__('os').execv('/usr/bin/touch', ['touch', '{m}'])",
        "import sys\nsys.modules['os'].posix_spawn('/usr/bin/touch', ['touch', '{m}'], {{}})",
        "import importlib\nimportlib.import_module('posix').system('touch {m}')",
        "import _posixsubprocess, os\n_posixsubprocess.fork_exec(['touch', '{m}'], [b'/usr/bin/touch'], True, (), None, "
        "None, -1, -1, -1, -1, -1, -1, *os.pipe(), False, False, False, None, None, None, -1, None, False)",
    ],
)
def test_python_level_tricks_still_cannot_touch_the_host(sb, body, marker):
    need(sb, "seccomp")
    prog = body.format(m=marker) + f"\nimport os, time\ntime.sleep(0.05)\nx = os.path.exists({marker!r})"
    with same_worker(sb):
        res = run(sb, prog)
        assert res.status in ("ok", "error"), (res.status, res.error)
        if res.status == "ok":
            assert val(res) is False, "a process started by the job created the marker"


@pytest.mark.parametrize("encoding", ["base64", "zlib", "marshal", "rot13", "compile"])
def test_encoded_exec_still_cannot_touch_the_host(sb, encoding, marker):
    need(sb, "seccomp")
    payload = (
        f"import os\nrc = os.system('touch {marker}')\n"
        f"try:\n    data = open({HOST_FILE!r}).read()\nexcept OSError:\n    data = None\n"
        f"result = (rc != 0, data, os.path.exists({marker!r}))\n"
    )
    if encoding == "base64":
        prog = f"import base64\nexec(base64.b64decode({base64.b64encode(payload.encode())!r}))"
    elif encoding == "zlib":
        prog = f"import zlib\nexec(zlib.decompress({zlib.compress(payload.encode())!r}))"
    elif encoding == "marshal":
        code = marshal.dumps(compile(payload, "<x>", "exec"))
        prog = f"import marshal\nexec(marshal.loads({code!r}))"
    elif encoding == "rot13":
        import codecs

        prog = f"import codecs\nexec(codecs.decode({codecs.encode(payload, 'rot13')!r}, 'rot13'))"
    else:
        prog = f"exec(compile(bytes({list(payload.encode())!r}).decode(), 'y', 'exec'))"
    with same_worker(sb):
        res = run(sb, prog, ["result"])
        assert val(res) == (True, None, False)


def test_sys_modules_poisoning_dies_with_the_job(sb):
    prog = """
import sys, types, json, os, math, builtins
fake = types.ModuleType('json')
fake.dumps = lambda *a, **k: '{"status": "ok", "values": ["666"], "error": null}'
sys.modules['json'] = fake
sys.modules['os'] = fake
sys.modules['azr_poison'] = fake
json.dumps = fake.dumps  # the real module object too
math.pi = 3
builtins.sorted = lambda *a, **k: ['poisoned']
builtins.len = lambda *a: -1
builtins.azr_evil = True
sys.path.insert(0, '/tmp')
open('/tmp/random.py', 'w').write('def random():\\n    return 4\\n')
del sys.modules['random']
x = 1
"""
    with same_worker(sb):
        res = run(sb, prog)  # the job may forge or break its own verdict; only the next job matters
        assert res.status in ("ok", "error")


def test_builtins_tampering_before_exprs_only_affects_this_job(sb):
    prog = "import builtins\nbuiltins.abs = lambda v: 'evil'\nbuiltins.__import__ = None"
    with same_worker(sb):
        res = run(sb, prog, ["abs(-1)"])
        assert res.status == "ok" and val(res) == "evil"
        assert val(run(sb, "x = abs(-1)")) == 1


def test_probe_reads_the_same_world_after_every_escape_attempt(sb):
    """A final sweep in the shared worker after all the attacks above."""
    res = run(sb, PROBE, ["state"])
    assert val(res) == pristine()
