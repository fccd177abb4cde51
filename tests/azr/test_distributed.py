"""Data parallelism: real gloo process groups on this machine's CPUs, no mocks.

* the collectives of :class:`azr.distributed.Dist` (map order, broadcast, sums) on 2 spawned processes;
* gradients: 2 ranks each back-propagating their shard of a token-mean loss, then summing, give the
  single-process full-batch gradient;
* end to end: ``accelerate launch`` with 2 CPU processes runs 2 steps of the tiny config; the loss is
  finite, rank 0 alone writes the buffer and metrics, and both ranks hold identical weights (their
  fingerprints, recorded in the checkpoint, equal the saved model's);
* FSDP2 (``configs/accelerate/fsdp.yaml``): the sharded model generates and updates exactly as one
  process does (2 spawned processes against a single-process run), and end to end it trains, saves a
  full HF checkpoint and resumes; DeepSpeed, and FSDP with LoRA or vLLM, fail at start.
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


# ---- FSDP2 (azr.fsdp): the model sharded across 2 gloo processes ----------------------------------------


def _update_inputs(model, pad: int):
    """5 samples (odd, so the ranks hold different numbers of micro-batches) with on-policy old log-probs."""
    from azr.generation import sequence_logprobs
    from azr.selfplay import Sample

    g = torch.Generator().manual_seed(3)
    prompts = [torch.randint(3, 300, (n,), generator=g).tolist() for n in (7, 4, 9, 5, 6)]
    completions = [torch.randint(3, 300, (n,), generator=g).tolist() for n in (5, 8, 3, 6, 2)]
    with torch.no_grad():
        old, _, _ = sequence_logprobs(model, prompts, completions, pad)
    samples = [Sample("solve" if k % 2 else "propose", "deduction", p, c, old[k, : len(c)].tolist(), 0.0)
               for k, (p, c) in enumerate(zip(prompts, completions, strict=True))]
    advantages = torch.tensor([1.0, -0.5, 0.7, -1.2, 0.3])
    return samples, advantages


def _run_update(model, dist: Dist, pad: int):
    """azr's own PPO update (ppo_update) with SGD+momentum, whose step, unlike Adam's first, scales with
    the gradient: a gradient averaged instead of summed over ranks would show in the weights."""
    from types import SimpleNamespace

    from azr.config import Config
    from azr.selfplay import ppo_update

    samples, advantages = _update_inputs(model, pad)
    cfg = Config()
    cfg.rl.micro_batch_size, cfg.rl.ppo_epochs, cfg.rl.grad_clip, cfg.rl.kl_coef = 1, 1, 0.05, 0.0
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    c = SimpleNamespace(cfg=cfg, model=model, dist=dist, optimizer=optimizer, scheduler=scheduler, ref_model=None,
                        generator=SimpleNamespace(pad_token_id=pad, sync_weights=lambda m: None))
    return ppo_update(c, samples, advantages), optimizer


def _fsdp_worker(rank: int, world: int, port: int, model_dir: str, out: str) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from azr import fsdp
    from azr.generation import HFGenerator, SamplingParams

    d = _init(rank, world, port)
    try:
        d.fsdp = fsdp.FsdpSettings()
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        model = fsdp.shard(AutoModelForCausalLM.from_pretrained(model_dir), d.fsdp, d.device, d.world)
        assert fsdp.is_sharded(model) and fsdp.is_sharded(model.model.layers[0])
        # generation: rank 0 has 3 prompts, rank 1 none; each generate call is a collective, so rank 1 must
        # run as many (padded) calls as rank 0 and step until rank 0's longest row is done
        gen = HFGenerator(model, tokenizer, batch_size=1, max_over_ranks=lambda n: int(d.max(n)))
        prompts = ["def f(a):", "return", "x = [1, 2"] if rank == 0 else []
        greedy = [g[0].completion_ids for g in gen.generate(prompts, SamplingParams(max_new_tokens=6, temperature=0))]
        stats, optimizer = _run_update(model, d, gen.pad_token_id)
        weights, optim = fsdp.full_state(model, optimizer)
        # the full optimizer state goes back into the shards unchanged (resume)
        optimizer.zero_grad(set_to_none=True)
        for state in optimizer.state.values():
            state["momentum_buffer"].zero_()
        fsdp.load_optimizer(model, optimizer, optim)
        _, again = fsdp.full_state(model, optimizer)
        if rank == 0:
            restored = all(torch.equal(again["state"][k]["momentum_buffer"], v["momentum_buffer"])
                           for k, v in optim["state"].items())
            torch.save({"weights": weights, "optim": optim, "stats": stats, "greedy": greedy, "restored": restored,
                        "fingerprint": parameter_fingerprint(model, weights)}, Path(out, "fsdp.pt"))
    finally:
        td.destroy_process_group()


def test_fsdp_generation_and_update_match_one_process(tiny_model_dir: Path, tmp_path: Path):
    """The sharded model generates what the whole model generates, and azr's update of the same samples
    (split across ranks, padded to equal micro-batch counts, gradients reduce-scattered by SUM, clipped
    as DTensors) gives the single-process weights, gradient norm, loss and optimizer state."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from azr import fsdp
    from azr.generation import HFGenerator, SamplingParams

    mp.spawn(_fsdp_worker, args=(2, free_port(), str(tiny_model_dir), str(tmp_path)), nprocs=2, join=True)
    got = torch.load(tmp_path / "fsdp.pt", weights_only=False)

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    gen = HFGenerator(model, AutoTokenizer.from_pretrained(tiny_model_dir), batch_size=1)
    greedy = gen.generate(["def f(a):", "return", "x = [1, 2"], SamplingParams(max_new_tokens=6, temperature=0))
    assert got["greedy"] == [g[0].completion_ids for g in greedy]
    stats, optimizer = _run_update(model, Dist(), gen.pad_token_id)

    assert stats["loss/grad_norm"] > 0.05  # clipping was active, so the norm's scale mattered
    for key in ("loss/total", "loss/pg_loss", "loss/grad_norm", "loss/ratio_mean"):
        assert got["stats"][key] == pytest.approx(stats[key], rel=1e-4, abs=1e-6), key
    for name, want in model.state_dict().items():
        torch.testing.assert_close(got["weights"][name], want, rtol=1e-4, atol=1e-6)
    assert not torch.allclose(initial["model.norm.weight"], model.state_dict()["model.norm.weight"])
    assert got["fingerprint"] == parameter_fingerprint(model, got["weights"])
    # the name-keyed FSDP optimizer state loads into a plain optimizer (resume without FSDP) and matches
    names = fsdp.trainable_names(model)
    plain = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    plain.load_state_dict(fsdp.by_index(got["optim"], names))
    for p in model.parameters():
        torch.testing.assert_close(plain.state[p]["momentum_buffer"], optimizer.state[p]["momentum_buffer"],
                                   rtol=1e-4, atol=1e-6)
    assert got["restored"]


def test_fsdp_settings_from_accelerate_env():
    from azr.fsdp import FsdpSettings, ParallelismError, settings_from_env

    assert settings_from_env({}) is None
    base = {"ACCELERATE_USE_FSDP": "true", "FSDP_VERSION": "2"}
    assert settings_from_env(base) == FsdpSettings()
    assert settings_from_env({**base, "FSDP_TRANSFORMER_CLS_TO_WRAP": "Qwen2DecoderLayer, X",
                              "FSDP_RESHARD_AFTER_FORWARD": "false"}) == FsdpSettings(("Qwen2DecoderLayer", "X"), False)
    for env, words in [({**base, "FSDP_VERSION": "1"}, "fsdp_version: 2"),
                       ({**base, "FSDP_OFFLOAD_PARAMS": "true"}, "fsdp_offload_params"),
                       ({**base, "FSDP_AUTO_WRAP_POLICY": "SIZE_BASED_WRAP"}, "TRANSFORMER_BASED_WRAP"),
                       ({"ACCELERATE_USE_DEEPSPEED": "true"}, "configs/accelerate/fsdp.yaml")]:
        with pytest.raises(ParallelismError, match=words):
            settings_from_env(env)


def _launch(config: str, model_dir: Path, out: Path, cwd: Path, *overrides: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", MASTER_PORT=str(free_port()))
    cmd = [str(Path(sys.executable).parent / "accelerate"), "launch", "--config_file", config,
           "--num_processes", "2", "--main_process_port", env["MASTER_PORT"], "-m", "azr", "train",
           str(ROOT / "configs" / "tiny.yaml"), f"model.name_or_path={model_dir}", f"trainer.output_dir={out}",
           "trainer.save_every=0", "trainer.report_to=[none]", "sandbox.workers=1", "rl.batch_per_type_role=3",
           "rl.learnability_rollouts=2", "generation.max_new_tokens_propose=96",
           "generation.max_new_tokens_solve=48", *overrides]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900, cwd=cwd)


@pytest.mark.slow
def test_accelerate_launch_fsdp_two_cpu_processes(e2e_model_dir: Path, tmp_path: Path):
    """configs/accelerate/fsdp.yaml on 2 CPU processes: 2 steps with the model sharded, a checkpoint that
    is a plain HF model (the full weights, trained), then a resumed third step."""
    out = tmp_path / "run"
    config = str(ROOT / "configs" / "accelerate" / "fsdp.yaml")
    proc = _launch(config, e2e_model_dir, out, tmp_path, "trainer.max_steps=2")
    assert proc.returncode == 0, proc.stderr[-4000:]
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines() if x.strip()]
    assert [m["step"] for m in lines] == [1, 2]
    for m in lines:
        assert math.isfinite(m["loss/total"]) and math.isfinite(m["loss/grad_norm"]) and m["loss/grad_norm"] > 0
    ckpt = out / "checkpoints" / "step-000002"
    state = json.loads((ckpt / "trainer_state.json").read_text())
    assert state["world_size"] == 2 and state["fsdp"] is True

    from transformers import AutoModelForCausalLM

    saved = AutoModelForCausalLM.from_pretrained(ckpt / "model")
    assert parameter_fingerprint(saved) == state["fingerprint"]  # the full weights, not one rank's shard
    assert parameter_fingerprint(AutoModelForCausalLM.from_pretrained(e2e_model_dir)) != state["fingerprint"]
    optim = torch.load(ckpt / "optimizer.pt", weights_only=False)
    assert set(optim["state"]) == {n for n, _ in saved.named_parameters()}  # full, keyed by name
    assert all(v["exp_avg"].shape == dict(saved.named_parameters())[k].shape for k, v in optim["state"].items())

    proc = _launch(config, e2e_model_dir, out, tmp_path, "trainer.max_steps=3", "trainer.resume=auto")
    assert proc.returncode == 0, proc.stderr[-4000:]
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines() if x.strip()]
    assert [m["step"] for m in lines] == [1, 2, 3] and math.isfinite(lines[-1]["loss/total"])
    assert json.loads((out / "checkpoints" / "step-000003" / "trainer_state.json").read_text())["fsdp"] is True


def test_unsupported_parallelism_fails_at_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """DeepSpeed (accelerate's --use_deepspeed) and FSDP with LoRA or vLLM stop before anything is loaded."""
    from azr.components import RunError, build_components, check_sharding
    from azr.config import load_config
    from azr.fsdp import FsdpSettings

    cfg = load_config(ROOT / "configs" / "tiny.yaml", [f"trainer.output_dir={tmp_path / 'run'}"])
    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "true")
    with pytest.raises(RunError, match="DeepSpeed is not supported.*configs/accelerate/fsdp.yaml"):
        build_components(cfg)
    assert not (tmp_path / "run").exists()
    sharded = Dist(0, 2, torch.device("cpu"), FsdpSettings())
    with pytest.raises(RunError, match="FSDP with LoRA is not supported yet"):
        check_sharding(load_config(ROOT / "configs" / "tiny-lora.yaml"), sharded)
    with pytest.raises(RunError, match="generation.backend: vllm with FSDP"):
        check_sharding(load_config(ROOT / "configs" / "tiny.yaml", ["generation.backend=vllm"]), sharded)
    check_sharding(cfg, sharded)  # the plain full-model HF run is fine
