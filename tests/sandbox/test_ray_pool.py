"""The Ray-backed sandbox keeps the local pool's contract, on a real local Ray cluster.

The contract tests of ``test_api.py`` run here unchanged against a ``RaySandbox`` (its ``sb``
fixture is replaced by this module's); the rest covers what Ray adds: answers equal to the local
pool's over many jobs across actors, actors killed or frozen mid-batch, and a clean close.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import threading
import time

import pytest
import ray

from sandbox import Job, Sandbox, SandboxError, Value, ray_pool
from sandbox import pool as local_pool
from sandbox.bench import make_jobs
from sandbox.factory import make_sandbox
from sandbox.ray_pool import RaySandbox


def _load_contract():
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "test_api.py")
    spec = importlib.util.spec_from_file_location("_sandbox_api_contract", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


_api = _load_contract()
# The local pool's contract, collected here so that it runs with this module's ``sb``.
test_issue_example = _api.test_issue_example
test_error_names_exception = _api.test_error_names_exception
test_evaluate_many_keeps_input_order = _api.test_evaluate_many_keeps_input_order
test_values_are_canonical = _api.test_values_are_canonical
test_opaque_values_never_compare_equal = _api.test_opaque_values_never_compare_equal
test_main_mode_and_output_capture = _api.test_main_mode_and_output_capture


# The shared pool's two actors hold both logical CPUs of the test cluster; the other pools made
# here reserve none, so that Ray can place them next to it.
SPARE = {"actor_options": {"num_cpus": 0}}


@pytest.fixture(scope="module", autouse=True)
def ray_cluster():
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    if started:
        ray.shutdown()


@pytest.fixture(scope="module")
def sb(ray_cluster):
    with RaySandbox(workers=2, timeout_s=5.0, memory_mb=512) as box:
        yield box


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return False


def _wait_dead(pids: list[int], within_s: float = 10.0) -> list[int]:
    deadline = time.time() + within_s
    while any(_alive(p) for p in pids) and time.time() < deadline:
        time.sleep(0.05)
    return [p for p in pids if _alive(p)]


def test_layers_are_reported_by_every_actor(sb):
    assert len(sb.actor_info) == 2 and len(set(sb.worker_pids)) == 2
    assert set(sb.layers) == set(sb.actor_info[0]["layers"])
    assert "fork-per-job" in sb.active_layers
    for info in sb.actor_info:
        for name in sb.active_layers:
            assert info["layers"][name]["active"], (name, info["host"])


def test_bad_arguments(ray_cluster):
    with pytest.raises(ValueError):
        RaySandbox(workers=0)
    with pytest.raises(ValueError, match="actors"):
        RaySandbox(workers=2, actors=3)
    with RaySandbox(workers=1, **SPARE) as box, pytest.raises(TypeError):
        box.evaluate(b"x = 1")  # type: ignore[arg-type]
    with pytest.raises(SandboxError):
        box.evaluate("x = 1")


def test_several_workers_in_one_actor(ray_cluster):
    with RaySandbox(workers=2, actors=1, **SPARE) as box:
        outs = box.evaluate_many([(f"import time\ntime.sleep(0.05)\nx = {i}", ["x"]) for i in range(12)])
        assert [o.values[0].to_python() for o in outs] == list(range(12))
        assert len(box.actor_handles) == 1 and {o.worker for o in outs} == {0, 1}


def test_an_actor_that_cannot_start_is_a_clear_error(ray_cluster):
    with pytest.raises(SandboxError, match="failed to start.*no_such_option"):
        RaySandbox(workers=1, no_such_option=1, **SPARE)


def test_every_status_in_one_batch_and_nothing_restarts(sb):
    progs = [
        ("while True:\n    pass", "timeout"),
        ("import ctypes\nctypes.string_at(0)", "killed"),
        ("x = ' ' * (1 << 34)", "memory"),
        ("raise ValueError('boom')", "error"),
        ("", "ok"),
    ]
    restarts = sb.restarts
    t = time.time()
    outs = sb.evaluate_many([Job(p, ["1"], timeout_s=0.5) for p, _ in progs * 2])
    assert [o.status for o in outs] == [s for _, s in progs * 2]
    assert "SIGSEGV" in outs[1].error and outs[3].error.startswith("ValueError: boom")
    assert sb.restarts == restarts and time.time() - t < 20


def test_many_jobs_match_the_local_pool_in_order(sb):
    jobs = make_jobs(300, seed=3)
    ours = sb.evaluate_many(jobs)
    with Sandbox(workers=1, timeout_s=5.0, memory_mb=512) as local:
        theirs = local.evaluate_many(jobs)
    assert [o.status for o in ours] == ["ok"] * 300
    assert [o.values[0].text for o in ours] == [o.values[0].text for o in theirs]
    assert {o.worker for o in ours} == {0, 1}
    assert sb.evaluate("import random", ["random.random()"], seed=7).values == [
        Value.from_python(__import__("random").Random(7).random())]


def test_actor_killed_mid_batch_is_replaced_and_its_jobs_rerun(ray_cluster):
    with RaySandbox(workers=2, timeout_s=5.0, memory_mb=256, **SPARE) as box:
        victim = box.actor_handles[0]
        victim_workers = box.actor_info[0]["worker_pids"]
        jobs = [Job(f"import time\ntime.sleep(0.3)\nx = {i}", ["x"]) for i in range(12)]
        out: dict = {}
        t = threading.Thread(target=lambda: out.update(r=box.evaluate_many(jobs)))
        t.start()
        time.sleep(0.6)  # both actors are busy with their first chunks
        ray.kill(victim)
        t.join(60)
        assert not t.is_alive()
        assert [r.status for r in out["r"]] == ["ok"] * 12
        assert [r.values[0].to_python() for r in out["r"]] == list(range(12))
        assert box.restarts >= 1 and box.actor_handles[0] != victim
        assert _wait_dead(victim_workers) == [], "the dead actor's workers must not outlive it"
        assert {r.worker for r in box.evaluate_many([("", [str(i)]) for i in range(8)])} == {0, 1}


def test_frozen_actor_is_written_off_by_the_watchdog(ray_cluster, monkeypatch):
    monkeypatch.setattr(ray_pool, "ACTOR_GRACE_S", 4.0)
    monkeypatch.setattr(local_pool, "WATCHDOG_GRACE_S", 0.5)
    with RaySandbox(workers=1, timeout_s=0.5, memory_mb=128, **SPARE) as box:
        pid = box.actor_info[0]["pid"]
        os.kill(pid, signal.SIGSTOP)  # the actor process stops answering, without dying
        try:
            t = time.time()
            res = box.evaluate("", ["'after'"])
            assert res.status == "ok" and res.values[0].text == "'after'"
            assert box.restarts == 1 and time.time() - t < 30
            assert _wait_dead([pid], within_s=30) == [], "the frozen actor must be killed, not left behind"
        finally:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_close_leaves_no_actor_and_no_worker(ray_cluster):
    box = RaySandbox(workers=2, timeout_s=5.0, memory_mb=128, **SPARE)
    handles, workers = box.actor_handles, box.worker_pids
    assert box.evaluate("", ["1"]).ok
    box.close()
    for h in handles:
        with pytest.raises(ray.exceptions.RayActorError):
            ray.get(h.info.remote(), timeout=30)
    assert _wait_dead(workers) == []
    with pytest.raises(SandboxError):
        box.evaluate("x = 1")
    assert ray.is_initialized(), "close() must not shut down a Ray it did not start"


def test_factory_picks_the_backend(ray_cluster):
    with make_sandbox("local", workers=1, address="") as box:
        assert isinstance(box, Sandbox)
    with pytest.raises(ValueError, match="unknown sandbox backend 'docker'"):
        make_sandbox("docker")
    with pytest.raises(ValueError, match="backend is 'local'"):
        make_sandbox("local", address="auto")
    with make_sandbox("ray", workers=1, timeout_s=2.0, **SPARE) as box:
        assert isinstance(box, RaySandbox) and box.evaluate("", ["2 * 21"]).values[0].text == "42"
