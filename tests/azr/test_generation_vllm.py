"""The vLLM backend without vLLM: start-up errors, the config rules, and TRL's real ``VLLMGeneration``
driven with vLLM's side replaced.

vLLM cannot run here (no GPU), so three things stand in for it, each shaped after what vLLM hands TRL:

* an HTTP server answering ``/health`` and ``/v1/completions`` the way ``vllm serve`` does for token-id
  prompts with ``return_token_ids`` (choices prompt-major, ``token_ids`` per choice, ``logprobs`` as
  ``{"tokens": ["token_id:<id>"], "token_logprobs": [...], "top_logprobs": [...]}``); TRL's real
  ``VLLMGeneration.generate`` (server mode) and ``VLLMClient.generate`` talk to it;
* ``RequestOutput``/``CompletionOutput``/``Logprob`` records (``prompt_token_ids``, ``outputs[k].token_ids``,
  ``outputs[k].logprobs[t] = {token_id: Logprob(logprob, rank)}``) fed to TRL's ``extract_logprobs``, as
  TRL's colocate branch does with ``LLM.generate``'s output;
* a weight receiver with vLLM's ``model.load_weights([(name, tensor)])`` entry point (HF checkpoint
  names), reached through ``llm.llm_engine.model_executor.driver_worker.model_runner.model`` the way
  TRL's colocate ``sync_weights`` reaches it.

Only vLLM's own process start (``VLLMGeneration._init_vllm``) is skipped; TRL's constructor runs with
the keyword arguments azr builds.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from azr.config import ConfigError, load_config
from azr.generation import HFGenerator, SamplingParams
from azr.generation_vllm import (
    VLLMGenerator,
    VLLMUnavailable,
    check_server,
    engine_kwargs,
    generations_from_vllm,
    max_model_len,
)

ROOT = Path(__file__).resolve().parents[2]
VLLM_INSTALLED = importlib.util.find_spec("vllm") is not None


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


def load_tiny(path):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)


# ---- start-up errors through the real CLI -----------------------------------------------------------


@pytest.mark.skipif(VLLM_INSTALLED, reason="vllm is installed here, so the missing-vllm error cannot happen")
def test_missing_vllm_is_one_error_before_any_run_data(tiny_model_dir: Path, tmp_path: Path):
    out = tmp_path / "run"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    res = subprocess.run([sys.executable, "-m", "azr.cli", "train", str(ROOT / "configs" / "tiny.yaml"),
                          f"model.name_or_path={tiny_model_dir}", f"trainer.output_dir={out}",
                          "generation.backend=vllm"], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=300)  # fmt: skip
    assert res.returncode == 2, res.stderr[-2000:]
    errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, res.stderr[-2000:]
    assert "generation.backend=vllm" in errors[0] and "vLLM cannot be imported" in errors[0]
    assert 'pip install -e ".[vllm]"' in errors[0] and "generation.backend=hf" in errors[0]
    assert "Traceback" not in res.stderr
    assert not out.exists()  # nothing written, not even the run directory


# ---- config rules -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("override", "field_name"), [
    ("generation.top_p=0.95", "generation.top_p"),
    ("generation.top_k=20", "generation.top_k"),
    ("model.lora.enabled=true model.lora.per_role=true", "model.lora.per_role"),
    ("generation.vllm.max_model_len=1000", "generation.vllm.max_model_len"),
])  # fmt: skip
def test_config_refuses_what_vllm_cannot_do(override: str, field_name: str):
    with pytest.raises(ConfigError, match=field_name.replace(".", r"\.")):
        load_config(ROOT / "configs" / "qwen2.5-7b-vllm.yaml", override.split())


def test_config_rules_apply_to_vllm_only():
    cfg = load_config(ROOT / "configs" / "tiny.yaml", ["generation.top_p=0.95", "model.lora.enabled=true",
                                                     "model.lora.per_role=true"])
    assert cfg.generation.backend == "hf" and cfg.generation.top_p == 0.95
    with pytest.raises(ConfigError, match="generation.vllm.server_url: must be set"):
        load_config(ROOT / "configs" / "tiny.yaml", ["generation.backend=vllm", "generation.vllm.mode=server"])
    with pytest.raises(ConfigError, match="generation.vllm.server_url: must start with http"):
        load_config(ROOT / "configs" / "tiny.yaml", ["generation.backend=vllm", "generation.vllm.mode=server",
                                                     "generation.vllm.server_url=localhost:8000"])


def test_vllm_config_file_and_context_length():
    cfg = load_config(ROOT / "configs" / "qwen2.5-7b-vllm.yaml")
    g = cfg.generation
    assert cfg.model.name_or_path == "Qwen/Qwen2.5-7B"
    assert (g.backend, g.vllm.mode, g.vllm.tensor_parallel_size) == ("vllm", "colocate", 1)
    assert max_model_len(g) == 6144 + 8096  # the longest prompt plus the longest completion
    g.vllm.max_model_len = 16384
    assert max_model_len(g) == 16384


# ---- the server health check against a real HTTP server ---------------------------------------------


@dataclass
class FakeVLLMServer:
    """`vllm serve` for token-id prompts, answering from a script: {(prompt ids, sample index): choice}."""

    script: dict[tuple[tuple[int, ...], int], dict] = field(default_factory=dict)
    health_status: int = 200
    requests: list[dict] = field(default_factory=list)

    def __enter__(self) -> FakeVLLMServer:
        server_self = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest output clean
                pass

            def _reply(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                if self.path == "/health":
                    self._reply(server_self.health_status, {})
                else:
                    self._reply(404, {"detail": "not found"})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server_self.requests.append(body)
                if self.path != "/v1/completions":
                    self._reply(404, {"detail": "not found"})
                    return
                choices = []
                for prompt in body["prompt"]:  # prompt-major, n choices each, as vLLM answers
                    for j in range(body["n"]):
                        choice = server_self.script[(tuple(prompt), j)]
                        choices.append({"index": len(choices), "prompt_token_ids": prompt, **choice})
                self._reply(200, {"choices": choices})

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_check_server_accepts_a_healthy_server_and_names_the_setting_otherwise():
    with FakeVLLMServer() as server:
        check_server(server.url)
        check_server(server.url + "/")
        server.health_status = 503
        with pytest.raises(VLLMUnavailable, match=r"generation\.vllm\.server_url: .*/health answered HTTP 503"):
            check_server(server.url)
    url = closed_port_url()
    with pytest.raises(VLLMUnavailable, match=r"generation\.vllm\.server_url: no vLLM server answers at") as info:
        check_server(url, timeout_s=2)
    assert url in str(info.value) and "trl vllm-serve" in str(info.value)


# ---- generation through TRL's real VLLMGeneration (server mode) and VLLMClient ----------------------


def no_launch_engine(cfg, model, tokenizer):
    """TRL's VLLMGeneration built with azr's keyword arguments, minus the vLLM process start."""
    from accelerate import Accelerator
    from trl.generation.vllm_generation import VLLMGeneration

    class NoLaunch(VLLMGeneration):
        def _init_vllm(self) -> None:
            pass

    return NoLaunch(**engine_kwargs(cfg, model, tokenizer, Accelerator()))


def trl_client(url: str):
    """TRL's VLLMClient pointed at ``url`` (its constructor refuses to run without vllm installed)."""
    import requests
    from trl.generation.vllm_client import VLLMClient

    client = VLLMClient.__new__(VLLMClient)
    client.session, client.base_url, client.model = requests.Session(), url, "served-model"
    return client


def choice(token_ids: list[int], logprobs: list[float], extra_candidate: tuple[int, float] | None = None) -> dict:
    """One /v1/completions choice with token-id logprobs; ``extra_candidate`` adds a likelier token at
    position 0 (so the sampled token is not the first candidate after TRL sorts them)."""
    tops = [None] * len(token_ids)
    if extra_candidate is not None:
        tops[0] = {f"token_id:{extra_candidate[0]}": extra_candidate[1]}
    return {"text": "ignored", "token_ids": token_ids, "finish_reason": "stop",
            "logprobs": {"tokens": [f"token_id:{t}" for t in token_ids], "token_logprobs": logprobs,
                         "top_logprobs": tops}}  # fmt: skip


def test_server_mode_generation_end_to_end(tiny_model_dir, tokenizer):
    model = load_tiny(tiny_model_dir)
    eos = tokenizer.eos_token_id
    prompts = ["def f(a):", "User: What is 12 + 30? Assistant: <think>"]
    enc = [tokenizer(p)["input_ids"] for p in prompts]

    def ids(text: str) -> list[int]:
        return tokenizer(text, add_special_tokens=False)["input_ids"]

    answer = ids(" 42 </think> <answer>42</answer>")  # ends on the token completing the stop string
    overshoot = ids("<answer>6</answer>") + ids(" and more")  # an engine that ran past the stop string
    with_eos = ids("    return a * 2") + [eos]
    truncated = ids("    return sorted(xs)")[:5]
    script = {
        (tuple(enc[0]), 0): choice(with_eos, [-0.1 * (t + 1) for t in range(len(with_eos))], extra_candidate=(7, -0.01)),
        (tuple(enc[0]), 1): choice(truncated, [-0.5 - t for t in range(len(truncated))]),
        (tuple(enc[1]), 0): choice(answer, [-0.2] * len(answer)),
        (tuple(enc[1]), 1): choice(overshoot, [-0.3 - 0.01 * t for t in range(len(overshoot))]),
    }
    with FakeVLLMServer(script=script) as server:
        cfg = load_config(ROOT / "configs" / "tiny.yaml", ["generation.backend=vllm", "generation.vllm.mode=server",
                                                           f"generation.vllm.server_url={server.url}"])
        engine = no_launch_engine(cfg, model, tokenizer)
        engine.vllm_client = trl_client(server.url)
        gen = VLLMGenerator(engine, tokenizer)
        params = SamplingParams(max_new_tokens=5, temperature=0.7, n=2, stop=("</answer>",))
        rows = gen.generate(prompts, params, roles=["propose", "solve"])

    body = server.requests[-1]
    assert body["prompt"] == enc and body["n"] == 2  # unique prompts, n samples each
    assert (body["temperature"], body["top_p"], body["top_k"], body["min_p"]) == (0.7, 1.0, 0, 0.0)
    assert (body["max_tokens"], body["logprobs"], body["repetition_penalty"]) == (5, 0, 1.0)
    assert body["stop"] == ["</answer>"] and body["include_stop_str_in_output"] is True
    assert body["return_token_ids"] is True and "seed" not in body

    assert [len(r) for r in rows] == [2, 2]
    g = rows[0][0]  # EOS kept and ends the completion; the sampled token's log-prob, not the likelier one's
    assert g.prompt_ids == enc[0] and g.completion_ids == with_eos and g.finish_reason == "stop"
    assert g.logprobs == pytest.approx([-0.1 * (t + 1) for t in range(len(with_eos))])
    assert g.text == "    return a * 2"
    g = rows[0][1]
    assert (g.completion_ids, g.finish_reason, g.text) == (truncated, "length", tokenizer.decode(truncated))
    g = rows[1][0]
    assert (g.completion_ids, g.finish_reason) == (answer, "stop") and g.text.endswith("<answer>42</answer>")
    g = rows[1][1]  # cut at the token that completes the stop string, log-probs with it
    cut = len(ids("<answer>6</answer>"))
    assert g.completion_ids == overshoot[:cut] and len(g.logprobs) == cut and g.text == "<answer>6</answer>"
    assert g.logprobs == pytest.approx([-0.3 - 0.01 * t for t in range(cut)])


def test_greedy_and_seed_reach_vllm(tiny_model_dir, tokenizer):
    model = load_tiny(tiny_model_dir)
    enc = tokenizer("def f(a):")["input_ids"]
    completion = tokenizer(" return a", add_special_tokens=False)["input_ids"]
    with FakeVLLMServer(script={(tuple(enc), 0): choice(completion, [-0.25] * len(completion))}) as server:
        cfg = load_config(ROOT / "configs" / "tiny.yaml", ["generation.backend=vllm", "generation.vllm.mode=server",
                                                           f"generation.vllm.server_url={server.url}"])
        engine = no_launch_engine(cfg, model, tokenizer)
        engine.vllm_client = trl_client(server.url)
        gen = VLLMGenerator(engine, tokenizer)
        greedy = gen.generate(["def f(a):"], SamplingParams(max_new_tokens=8, temperature=0, top_p=0.5, n=3))
        seeded = gen.generate(["def f(a):"], SamplingParams(max_new_tokens=8, temperature=1.0, n=1, seed=11))
        with pytest.raises(ValueError, match="seed needs n == 1"):
            gen.generate(["def f(a):"], SamplingParams(max_new_tokens=8, n=2, seed=11))
    first, second = server.requests[0], server.requests[1]
    assert (first["n"], first["temperature"], first["top_p"]) == (1, 0, 1.0)  # greedy: once, then copied
    assert [g.completion_ids for g in greedy[0]] == [completion] * 3
    assert greedy[0][1] is not greedy[0][0] and greedy[0][1].logprobs is not greedy[0][0].logprobs
    assert second["seed"] == 11 and "stop" not in second
    assert seeded[0][0].finish_reason == "length" and seeded[0][0].logprobs == [-0.25] * len(completion)


# ---- colocate output: vLLM RequestOutput records through TRL's extract_logprobs ---------------------


@dataclass
class Logprob:  # vllm.logprobs.Logprob
    logprob: float
    rank: int
    decoded_token: str | None = None


@dataclass
class CompletionOutput:  # vllm.outputs.CompletionOutput (the fields TRL reads)
    index: int
    token_ids: list[int]
    logprobs: list[dict[int, Logprob]]
    text: str = ""
    finish_reason: str | None = "stop"


@dataclass
class RequestOutput:  # vllm.outputs.RequestOutput (the fields TRL reads)
    prompt_token_ids: list[int]
    outputs: list[CompletionOutput]


def test_colocate_request_outputs_convert(tokenizer):
    from trl.generation.vllm_generation import extract_logprobs

    eos = tokenizer.eos_token_id
    prompt = tokenizer("def f(a):")["input_ids"]
    samples = [tokenizer(" return a", add_special_tokens=False)["input_ids"] + [eos],
               tokenizer(" return 2 * a", add_special_tokens=False)["input_ids"]]
    # Colocate sends each sample as its own request (n=1): one RequestOutput per sample, prompt-major.
    # The sampled token is reported with its rank, here behind a likelier candidate (logprobs=N > 0).
    outs = [RequestOutput(prompt, [CompletionOutput(0, ids, [
        {(ids[t] + 1) % 300: Logprob(-0.05, 1), ids[t]: Logprob(-1.0 - t - k, 2)} for t in range(len(ids))])])
        for k, ids in enumerate(samples)]  # fmt: skip
    completion_ids = [o.token_ids for r in outs for o in r.outputs]  # as TRL's colocate branch collects them
    logprobs, logprob_ids = extract_logprobs(outs)
    rows = generations_from_vllm([prompt], completion_ids, logprobs, logprob_ids, 2,
                                 SamplingParams(max_new_tokens=len(samples[1])), [eos],
                                 lambda ids: tokenizer.decode(ids, skip_special_tokens=True))  # fmt: skip
    assert [g.completion_ids for g in rows[0]] == samples
    assert [g.finish_reason for g in rows[0]] == ["stop", "length"]
    assert rows[0][0].logprobs == [-1.0 - t for t in range(len(samples[0]))]
    assert rows[0][1].logprobs == [-2.0 - t for t in range(len(samples[1]))]
    assert rows[0][0].text == " return a"


def test_conversion_refuses_inconsistent_output():
    params = SamplingParams(max_new_tokens=4)
    decode = str
    with pytest.raises(RuntimeError, match="3 completions for 2 prompts x 2"):
        generations_from_vllm([[1], [2]], [[5]] * 3, [[[0.0]]] * 3, [[[5]]] * 3, 2, params, [0], decode)
    with pytest.raises(RuntimeError, match="no log-probs"):
        generations_from_vllm([[1]], [[5]], None, None, 1, params, [0], decode)
    with pytest.raises(RuntimeError, match="NaN"):
        generations_from_vllm([[1]], [[5, 6]], [[[-0.1], [None]]], [[[5], [6]]], 1, params, [0], decode)
    with pytest.raises(RuntimeError, match="no log-prob reported for sampled token 6"):
        generations_from_vllm([[1]], [[5, 6]], [[[-0.1], [-0.2]]], [[[5], [9]]], 1, params, [0], decode)


# ---- weight sync through TRL's real colocate sync_weights -------------------------------------------


class WeightReceiver:
    """vLLM's model-side entry point: ``load_weights`` takes (HF checkpoint name, tensor) pairs."""

    def __init__(self, model) -> None:
        self.model = model
        self.params = dict(model.named_parameters())
        self.loaded: list[str] = []

    def load_weights(self, weights) -> None:
        with torch.no_grad():
            for name, tensor in weights:
                self.params[name].copy_(tensor)  # an unknown name is a KeyError, as in vLLM
                self.loaded.append(name)


def colocate_generator(tiny_model_dir, model, tokenizer):
    cfg = load_config(ROOT / "configs" / "tiny.yaml", ["generation.backend=vllm"])
    engine = no_launch_engine(cfg, model, tokenizer)
    receiver, resets = WeightReceiver(load_tiny(tiny_model_dir)), []
    runner = SimpleNamespace(model=receiver)
    engine.llm = SimpleNamespace(
        llm_engine=SimpleNamespace(model_executor=SimpleNamespace(driver_worker=SimpleNamespace(model_runner=runner))),
        reset_prefix_cache=lambda: resets.append(True))
    return VLLMGenerator(engine, tokenizer), receiver, resets


def logits(model, ids: list[int]) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=torch.tensor([ids])).logits


def test_sync_pushes_the_updated_full_model(tiny_model_dir, tokenizer):
    model = load_tiny(tiny_model_dir)
    gen, receiver, resets = colocate_generator(tiny_model_dir, model, tokenizer)
    ids = tokenizer("def f(a):\n    return a * 2")["input_ids"]
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    model(input_ids=torch.tensor([ids]), labels=torch.tensor([ids])).loss.backward()
    opt.step()
    assert not torch.allclose(logits(receiver.model, ids), logits(model, ids))  # vLLM still has the old weights
    gen.sync_weights(model)
    assert set(receiver.loaded) == {n for n, _ in model.named_parameters()} and resets == [True]
    for name, p in model.named_parameters():
        assert torch.equal(receiver.params[name], p), name


def test_sync_pushes_merged_lora_weights_and_keeps_the_adapter(tiny_model_dir, tokenizer):
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    model = get_peft_model(load_tiny(tiny_model_dir), LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                                                 init_lora_weights=False))  # B != 0: the adapter matters
    gen, receiver, _ = colocate_generator(tiny_model_dir, model, tokenizer)
    ids = tokenizer("User: What is 12 + 30? Assistant:")["input_ids"]
    before = logits(model, ids)
    assert not torch.allclose(logits(receiver.model, ids), before, atol=1e-4)
    gen.sync_weights(model)
    torch.testing.assert_close(logits(receiver.model, ids), before, atol=1e-4, rtol=1e-4)  # merged into vLLM
    assert not any(getattr(m, "merged", False) for m in model.modules())  # unmerged again for training
    torch.testing.assert_close(logits(model, ids), before, atol=1e-5, rtol=1e-5)
    assert not any("lora_" in n or "base_layer" in n for n in receiver.loaded)
    assert set(receiver.loaded) == set(receiver.params)


# ---- the trainer syncs after its update -------------------------------------------------------------


class RecordingHF(HFGenerator):
    """The HF backend, recording what the trainer hands ``sync_weights`` and when."""

    synced: list[dict[str, torch.Tensor]]

    def sync_weights(self, model) -> None:
        self.synced.append({n: p.detach().clone() for n, p in model.named_parameters()})


def test_ppo_update_syncs_the_generator_after_the_optimiser_step(tiny_model_dir, tokenizer, tmp_path):
    import random

    from azr.components import Components, lr_lambda
    from azr.selfplay import ppo_update, to_sample

    cfg = load_config(ROOT / "configs" / "tiny.yaml", [f"trainer.output_dir={tmp_path}", "rl.ppo_epochs=2"])
    model = load_tiny(tiny_model_dir)
    gen = RecordingHF(model, tokenizer, batch_size=4)
    gen.synced = []
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(cfg))
    c = Components(cfg, tmp_path, model, tokenizer, gen, sandbox=None, buffer=None, optimizer=optimizer,
                   scheduler=scheduler, rng=random.Random(0), logger=None)  # type: ignore[arg-type]
    rows = gen.generate(["def f(a):", "User: What is 12 + 30?"], SamplingParams(max_new_tokens=6, n=2, seed=0))
    samples = [to_sample("solve", "deduction", g, reward) for row in rows for g, reward in zip(row, (1.0, 0.0))]
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    ppo_update(c, samples, torch.tensor([1.0, -1.0, 1.0, -1.0]))
    assert len(gen.synced) == 1  # once per update, after its last optimiser step
    assert any(not torch.equal(gen.synced[0][n], before[n]) for n in before)
    assert all(torch.equal(gen.synced[0][n], p) for n, p in model.named_parameters())


@pytest.mark.parametrize(("mode", "tp", "procs", "error"), [
    ("colocate", 1, 1, None),
    ("colocate", 1, 4, None),  # one independent engine per data-parallel process
    ("server", 1, 1, None),
    ("server", 1, 2, "server mode and tensor_parallel_size > 1 are not supported with several processes"),
    ("colocate", 2, 2, "server mode and tensor_parallel_size > 1 are not supported with several processes"),
    ("colocate", 2, 1, "tensor_parallel_size: 2 needs one trainer process per vLLM shard"),
])
def test_vllm_layouts_the_trainer_can_drive(mode, tp, procs, error):
    from azr.config import VLLMConfig
    from azr.generation_vllm import VLLMUnavailable, check_mode

    v = VLLMConfig(mode=mode, tensor_parallel_size=tp, server_url="http://localhost:8000")
    if error is None:
        check_mode(v, procs)
    else:
        with pytest.raises(VLLMUnavailable, match=error):
            check_mode(v, procs)
