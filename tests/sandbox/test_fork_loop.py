"""The zygote's two serving loops: the C loop (sandbox/_forkloop.c, the default where it was built)
and the Python fallback. The hostile batteries run against both through the ``sb``/``fresh_sb``
fixtures (and test_faults.py ends pools abruptly under both); this file checks what is particular
to the loops themselves."""

from __future__ import annotations

import importlib.util
import shutil

import pytest

from sandbox import Sandbox
from sandbox.bench import make_jobs
from tests.sandbox.conftest import make_sandbox, val


def _minor_faults(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as fh:
        return int(fh.read().rsplit(")", 1)[1].split()[7])


def test_the_c_loop_is_built_and_used_where_there_is_a_compiler():
    if shutil.which("cc") is None and shutil.which("gcc") is None:
        pytest.skip("no C compiler on this machine: the install could not build sandbox/_forkloop.c")
    assert importlib.util.find_spec("sandbox._forkloop") is not None, \
        "sandbox/_forkloop.c was not built: run `pip install -e .` again and read the compiler's output"
    with make_sandbox() as sb:
        assert sb.fork_loop == "c"
        assert val(sb.evaluate("def f(a):\n    return a * 2", ["f(21)"])) == 42


def test_loop_choice_is_validated_and_reported():
    with pytest.raises(ValueError, match="fork_loop"):
        Sandbox(workers=1, fork_loop="rust")
    with make_sandbox(fork_loop="python") as sb:
        assert sb.fork_loop == "python"


def test_the_c_loop_keeps_the_zygote_off_the_copy_on_write_path():
    """Why the C loop exists: after each fork every page the zygote writes is a copy-on-write fault.
    The Python loop writes ~150 pages a job; the C loop must stay far below that."""
    if importlib.util.find_spec("sandbox._forkloop") is None:
        pytest.skip("sandbox/_forkloop.c is not built")
    jobs = make_jobs(300)
    per_job = {}
    for loop in ("c", "python"):
        with make_sandbox(fork_loop=loop) as sb:
            sb.evaluate_many(jobs[:20])
            pid = sb.worker_pids[0]
            before = _minor_faults(pid)
            outs = sb.evaluate_many(jobs)
            per_job[loop] = (_minor_faults(pid) - before) / len(jobs)
            assert all(o.ok for o in outs)
    assert per_job["c"] < 40 and per_job["c"] * 3 < per_job["python"], per_job
