"""Data parallelism: real gloo process groups on this machine's CPUs, no mocks.

* the collectives of :class:`azr.distributed.Dist` (map order, broadcast, sums) on 2 spawned processes;
* gradients: 2 ranks each back-propagating their shard of a token-mean loss, then summing, give the
  single-process full-batch gradient;
* end to end: ``accelerate launch`` with 2 CPU processes runs 2 steps of the tiny config; the loss is
  finite, rank 0 alone writes the buffer and metrics, and both ranks hold identical weights (their
  fingerprints, recorded in the checkpoint, equal the saved model's).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as td
import torch.multiprocessing as mp

from azr.distributed import Dist, parameter_fingerprint

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _init(rank: int, world: int, port: int) -> Dist:
    td.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    return Dist(rank, world, torch.device("cpu"))


def _collectives(rank: int, world: int, port: int, out: str) -> None:
    d = _init(rank, world, port)
    try:
        items = list(range(11))
        mapped = d.map(lambda xs: [(x, x * x, d.rank) for x in xs], items)
        plan = d.broadcast({"from": d.rank, "tasks": ["a", "b"]})
        sums = d.sum_stats({"x": 1.0 + d.rank, f"only{d.rank}": 2.0})
        biggest = d.max(float(d.rank * 10))
        Path(out, f"rank{rank}.json").write_text(json.dumps(
            {"mapped": mapped, "plan": plan, "sums": sums, "max": biggest}))
    finally:
        td.destroy_process_group()


def test_collectives_on_two_processes(tmp_path: Path):
    mp.spawn(_collectives, args=(2, free_port(), str(tmp_path)), nprocs=2, join=True)
    results = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    for res in results:
        # every rank holds the full result in item order; item i was computed by rank i % 2
        assert [tuple(m) for m in res["mapped"]] == [(x, x * x, x % 2) for x in range(11)]
        assert res["plan"] == {"from": 0, "tasks": ["a", "b"]}
        assert res["sums"] == {"x": 3.0, "only0": 2.0, "only1": 2.0}
        assert res["max"] == 10.0


def _token_mean_grads(rank: int, world: int, port: int, out: str) -> None:
    d = _init(rank, world, port)
    try:
        torch.manual_seed(0)
        model = torch.nn.Linear(4, 3)
        if rank == 1:  # a different init on rank 1: broadcast_parameters must make the replicas equal
            torch.nn.init.constant_(model.weight, 5.0)
        d.broadcast_parameters(model)
        x, targets, lengths = _batch()
        denominator = float(sum(lengths))
        mine = list(range(len(lengths)))[d.rank :: d.world]
        loss = sum(_sequence_loss(model, x[i], targets[i], lengths[i]) for i in mine) / denominator
        if mine:
            loss.backward()
        d.sum_gradients(list(model.parameters()))
        torch.save({"grads": [p.grad for p in model.parameters()], "fp": parameter_fingerprint(model)},
                   Path(out, f"rank{rank}.pt"))
    finally:
        td.destroy_process_group()


def _batch() -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(5, 6, 4, generator=g)
    targets = torch.randint(0, 3, (5, 6), generator=g)
    return x, targets, [6, 2, 5, 1, 3]  # ragged "completions": token-mean weighs long ones more


def _sequence_loss(model: torch.nn.Module, x: torch.Tensor, t: torch.Tensor, n: int) -> torch.Tensor:
    logp = torch.log_softmax(model(x[:n]), -1)
    return -logp.gather(-1, t[:n, None]).sum()


def test_sharded_backward_plus_gradient_sum_is_the_full_batch_gradient(tmp_path: Path):
    mp.spawn(_token_mean_grads, args=(2, free_port(), str(tmp_path)), nprocs=2, join=True)
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    x, targets, lengths = _batch()
    loss = sum(_sequence_loss(model, x[i], targets[i], lengths[i]) for i in range(5)) / float(sum(lengths))
    loss.backward()
    expected = [p.grad for p in model.parameters()]
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    assert ranks[0]["fp"] == ranks[1]["fp"] == parameter_fingerprint(model)
    for res in ranks:
        for got, want in zip(res["grads"], expected, strict=True):
            torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-7)
    # one rank's shard alone is not the full gradient (the test would notice a missing all-reduce)
    assert not torch.allclose(expected[0], ranks[0]["grads"][0] / 2)


def test_single_process_is_a_no_op():
    d = Dist()
    assert d.map(lambda xs: [x + 1 for x in xs], [1, 2, 3]) == [2, 3, 4]
    assert d.broadcast("x") == "x" and d.gather(7) == [7] and d.sum_stats({"a": 1}) == {"a": 1}


@pytest.mark.slow
def test_accelerate_launch_two_cpu_processes(e2e_model_dir: Path, tmp_path: Path):
    if shutil.which("accelerate", path=str(Path(sys.executable).parent)) is None:
        pytest.fail("the accelerate launcher is not installed next to this Python (it is a core dependency)")
    out = tmp_path / "run"
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", MASTER_PORT=str(free_port()))
    cmd = [str(Path(sys.executable).parent / "accelerate"), "launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           "--main_process_port", env["MASTER_PORT"], "-m", "azr", "train", str(ROOT / "configs" / "tiny.yaml"),
           f"model.name_or_path={e2e_model_dir}", f"trainer.output_dir={out}", "trainer.max_steps=2",
           "trainer.save_every=0", "trainer.report_to=[none]", "sandbox.workers=1", "rl.batch_per_type_role=3",
           "rl.learnability_rollouts=2", "generation.max_new_tokens_propose=96", "generation.max_new_tokens_solve=48"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-4000:]

    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines() if x.strip()]
    assert [m["step"] for m in lines] == [1, 2]  # one writer: each step logged once
    for m in lines:
        assert math.isfinite(m["loss/total"]) and math.isfinite(m["loss/grad_norm"])
    state = json.loads((out / "checkpoints" / "step-000002" / "trainer_state.json").read_text())
    assert state["world_size"] == 2
    fingerprints = state["rank_fingerprints"]
    assert len(fingerprints) == 2 and fingerprints[0] == fingerprints[1]

    from transformers import AutoModelForCausalLM

    saved = AutoModelForCausalLM.from_pretrained(out / "checkpoints" / "step-000002" / "model")
    assert parameter_fingerprint(saved) == fingerprints[0]
    initial = AutoModelForCausalLM.from_pretrained(e2e_model_dir)
    assert parameter_fingerprint(initial) != fingerprints[0]  # it trained
    assert (out / "checkpoints" / "step-000002" / "rng-rank1.pt").is_file()
    assert sorted(p.name for p in out.glob("*.sqlite*"))[0] == "buffer.sqlite"
