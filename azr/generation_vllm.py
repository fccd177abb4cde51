"""The vLLM backend (``generation.backend: vllm``), built on TRL's ``VLLMGeneration``.

TRL owns the engine: it starts vLLM inside this process on the training GPU (``colocate``) or talks to
a vLLM server (``server``: ``trl vllm-serve``, i.e. ``vllm serve`` with TRL's flags), and pushes the
training weights into it (PEFT adapters merged for the push, then unmerged). This module adds what the
trainer needs on top: sampling parameters per call, :class:`~azr.generation.Generation` records with
the same meaning as the HF backend's, and start-up checks that fail before any run data is written.

TRL 1.16 API relied on (``trl/generation/vllm_generation.py``):

* ``VLLMGeneration(model, accelerator, processing_class, mode, server_base_url, tensor_parallel_size,
  gpu_memory_utilization, max_model_length, enable_sleep_mode, trust_remote_code, logprobs)``;
  colocate starts ``vllm.LLM(model=model.name_or_path, logprobs_mode="processed_logprobs", ...)``,
  server mode connects a ``VLLMClient`` and joins the server's NCCL weight-transfer group.
* ``generate(prompts, images, num_generations) -> (prompt_ids, completion_ids, logprobs,
  logprob_token_ids)``: ``prompts`` are token-id lists with each prompt repeated ``num_generations``
  times in a row; the results are prompt-major, one entry per sample; ``logprobs[s][t]`` and
  ``logprob_token_ids[s][t]`` list the candidates at position ``t`` (the sampled token among them),
  with ``None`` where vLLM reported NaN.
* The sampling attributes ``temperature, top_p, top_k, min_p, repetition_penalty,
  max_completion_length, logprobs, generation_kwargs`` are read at every ``generate`` call; extra
  vLLM ``SamplingParams`` (``stop``, ``include_stop_str_in_output``, ``seed``) go in
  ``generation_kwargs`` (colocate: merged into ``SamplingParams``; server: merged into the request).
* ``sync_weights()``: every ``model.named_parameters()`` (PEFT: merged, LoRA tensors skipped, names
  stripped of the PEFT prefixes) loaded into vLLM, then its prefix cache reset.

Log-probs: TRL runs vLLM with ``logprobs_mode="processed_logprobs"``: log_softmax of the logits after
temperature scaling *and* top-k/top-p truncation. That is exactly azr's convention (see
:mod:`azr.generation`) when ``top_p == 1`` and ``top_k == 0``, so the config requires those with this
backend. vLLM's other mode, ``raw_logprobs``, drops the temperature instead; no mode matches for
truncated sampling.
"""

from __future__ import annotations

import importlib
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch

from azr.config import first_line
from azr.generation import (
    Generation,
    SamplingParams,
    Tokenization,
    finish,
    greedy_copies,
)

if TYPE_CHECKING:
    from azr.config import Config, GenerationSettings, VLLMConfig

INSTALL_HINT = 'install it on a CUDA machine with `pip install -e ".[vllm]"`, or set generation.backend=hf'
SERVER_HINT = ("start one with `trl vllm-serve --model MODEL` (or `VLLM_SERVER_DEV_MODE=1 vllm serve MODEL "
               "--weight-transfer-config '{\"backend\": \"nccl\"}' --logprobs-mode processed_logprobs`), "
               "or set generation.vllm.mode=colocate")


class VLLMUnavailable(RuntimeError):
    """vLLM cannot serve this run; the message names the setting and what to do."""


# ---- start-up checks (before the model loads and before anything is written) ------------------------


def check_vllm(g: GenerationSettings, world_size: int) -> None:
    """vLLM and TRL's vLLM layer import, a CUDA device exists, and the chosen mode can start."""
    try:
        importlib.import_module("vllm")
        # TRL's client imports vLLM's weight-transfer modules: this fails on a vLLM it does not support.
        importlib.import_module("trl.generation.vllm_client")
    except Exception as exc:  # noqa: BLE001 - ImportError, or a broken CUDA install raising anything
        first = first_line(exc)
        raise VLLMUnavailable(f"generation.backend=vllm: vLLM cannot be imported ({first}); {INSTALL_HINT}") from None
    if not torch.cuda.is_available():
        raise VLLMUnavailable("generation.backend=vllm: no CUDA device is visible (colocate runs vLLM on it, server "
                              "mode pushes the weights from it over NCCL); run on a CUDA machine or set "
                              "generation.backend=hf")
    check_mode(g.vllm, world_size)
    if g.vllm.mode == "server":
        check_server(g.vllm.server_url)


def check_mode(v: VLLMConfig, procs: int) -> None:
    """The vLLM layouts this trainer can drive with ``procs`` trainer processes."""
    # azr shards rollouts unevenly across data-parallel ranks (azr/distributed.py); TRL's engine gathers
    # and re-slices prompts assuming equal shards in server mode and across a tensor-parallel group, so
    # only independent engines (colocate, one per process, tensor_parallel_size 1) are safe there.
    if procs > 1 and (v.mode == "server" or v.tensor_parallel_size != 1):
        raise VLLMUnavailable(
            f"generation.vllm: with {procs} trainer processes each process runs its own colocated vLLM engine; "
            "server mode and tensor_parallel_size > 1 are not supported with several processes yet: set "
            "generation.vllm.mode=colocate generation.vllm.tensor_parallel_size=1, or launch one process")
    if v.mode == "colocate" and v.tensor_parallel_size != 1:
        raise VLLMUnavailable(
            f"generation.vllm.tensor_parallel_size: {v.tensor_parallel_size} needs one trainer process per "
            "vLLM shard in colocate mode; set generation.vllm.tensor_parallel_size=1, or use "
            f"generation.vllm.mode=server with a server started with --tensor-parallel-size "
            f"{v.tensor_parallel_size}")


def check_server(url: str, timeout_s: float = 5.0) -> None:
    """One short ``GET <url>/health``; a vLLM server answers 200."""
    health = url.rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(health, timeout=timeout_s) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise VLLMUnavailable(f"generation.vllm.server_url: no vLLM server answers at {health} ({reason}); "
                              f"{SERVER_HINT}") from None
    if status != 200:
        raise VLLMUnavailable(f"generation.vllm.server_url: {health} answered HTTP {status}, not a ready vLLM "
                              f"server; {SERVER_HINT}")


# ---- building the engine ------------------------------------------------------------------------------


def max_model_len(g: GenerationSettings) -> int:
    """vLLM's context length: the configured one, else the longest prompt plus the longest completion
    (the model's own maximum, vLLM's default, may not fit the KV cache next to training)."""
    return g.vllm.max_model_len or g.longest_sequence


def engine_kwargs(cfg: Config, model: Any, tokenizer: Any, accelerator: Any) -> dict[str, Any]:
    """Keyword arguments of TRL's ``VLLMGeneration`` for this run; sampling is set per call."""
    g, v = cfg.generation, cfg.generation.vllm
    return dict(model=model, accelerator=accelerator, processing_class=tokenizer, mode=v.mode,
                server_base_url=v.server_url or None, tensor_parallel_size=v.tensor_parallel_size,
                gpu_memory_utilization=v.gpu_memory_utilization, max_model_length=max_model_len(g),
                enable_sleep_mode=v.enable_sleep_mode, trust_remote_code=cfg.model.trust_remote_code, logprobs=0)


def make_vllm_generator(cfg: Config, model: Any, tokenizer: Any) -> VLLMGenerator:
    """Start (colocate) or connect to (server) vLLM, then load the training weights into it."""
    from accelerate import Accelerator
    from trl.generation.vllm_generation import VLLMGeneration

    engine = VLLMGeneration(**engine_kwargs(cfg, model, tokenizer, Accelerator()))
    if cfg.generation.vllm.mode == "server":
        mode = engine.vllm_client.get_server_info().get("model_config", {}).get("logprobs_mode")
        if mode != "processed_logprobs":
            raise VLLMUnavailable(f"generation.vllm.server_url: the server runs with --logprobs-mode {mode}, which "
                                  "ignores the sampling temperature; restart it with --logprobs-mode "
                                  "processed_logprobs (`trl vllm-serve` does)")
    generator = VLLMGenerator(engine, tokenizer)
    # vLLM loaded the weights from disk (a server: whatever it was started with); a resumed run or a
    # LoRA model differs from that, so start from the trainer's weights.
    generator.sync_weights(model)
    return generator


# ---- the generator ------------------------------------------------------------------------------------


class VLLMGenerator(Tokenization):
    """The :class:`~azr.generation.Generator` interface over a TRL ``VLLMGeneration`` engine.

    Prompts are tokenised here (the trainer scores exactly these ids) and sent as token ids. Greedy
    calls generate once per prompt and copy, as the HF backend does.
    """

    def __init__(self, engine: Any, tokenizer: Any, add_special_tokens: bool = True) -> None:
        self.engine = engine
        model_eos = getattr(getattr(engine.model, "generation_config", None), "eos_token_id", None)
        super().__init__(tokenizer, model_eos, add_special_tokens)

    def sync_weights(self, model: Any) -> None:
        """Push the model's current weights (LoRA merged) into vLLM: the trainer calls it after every update."""
        self.engine.model = model
        self.engine.sync_weights()

    def generate(self, prompts: Sequence[str], params: SamplingParams | Sequence[SamplingParams],
                 roles: Sequence[str] | None = None) -> list[list[Generation]]:
        """One engine call per distinct ``SamplingParams`` (TRL's engine reads sampling settings from its
        attributes, so a call has one setting). ``roles`` is accepted for the interface; one set of
        weights serves every role here (the config refuses per-role adapters with this backend)."""
        if isinstance(params, SamplingParams):
            return self._generate_same(prompts, params)
        per_prompt = list(params)
        if len(per_prompt) != len(prompts):
            raise ValueError(f"VLLMGenerator.generate: {len(prompts)} prompts but {len(per_prompt)} SamplingParams")
        groups: dict[SamplingParams, list[int]] = {}
        for i, p in enumerate(per_prompt):
            groups.setdefault(p, []).append(i)
        out: list[list[Generation]] = [[] for _ in prompts]
        for p, members in groups.items():
            for i, row in zip(members, self._generate_same([prompts[i] for i in members], p), strict=True):
                out[i] = row
        return out

    def _generate_same(self, prompts: Sequence[str], params: SamplingParams) -> list[list[Generation]]:
        if not prompts:
            return []
        encoded = self.encode_all(prompts)
        copies = 1 if params.greedy else params.n
        if params.seed is not None and copies > 1:
            # Colocate mode sends each sample as its own request: one seed would make them identical.
            raise ValueError("VLLMGenerator.generate: SamplingParams.seed needs n == 1 (or greedy) with vLLM")
        self._set_sampling(params)
        _, completion_ids, logprobs, logprob_token_ids = self.engine.generate(
            prompts=[ids for ids in encoded for _ in range(copies)], images=None, num_generations=copies)
        rows = generations_from_vllm(encoded, completion_ids, logprobs, logprob_token_ids, copies, params,
                                     self.eos_token_ids, self.decode)
        if copies < params.n:
            rows = [greedy_copies(row[0], params.n) for row in rows]
        return rows

    def _set_sampling(self, params: SamplingParams) -> None:
        e = self.engine
        e.temperature = params.temperature  # 0 = greedy in vLLM too
        e.top_p, e.top_k = (1.0, 0) if params.greedy else (params.top_p, params.top_k)
        e.min_p, e.repetition_penalty = 0.0, 1.0
        e.max_completion_length = params.max_new_tokens
        e.logprobs = 0  # the sampled token's log-prob only
        extra: dict[str, Any] = {}
        if params.stop:
            extra.update(stop=list(params.stop), include_stop_str_in_output=params.include_stop_str_in_output)
        if params.seed is not None:
            extra["seed"] = params.seed
        e.generation_kwargs = extra


# ---- vLLM output -> Generation records ------------------------------------------------------------------


def generations_from_vllm(
    prompt_ids: Sequence[Sequence[int]],
    completion_ids: Sequence[Sequence[int]],
    logprobs: Sequence[Sequence[Sequence[float | None]]] | None,
    logprob_token_ids: Sequence[Sequence[Sequence[int]]] | None,
    copies: int,
    params: SamplingParams,
    eos_token_ids: Sequence[int],
    decode: Any,
) -> list[list[Generation]]:
    """TRL's ``VLLMGeneration.generate`` output (prompt-major, ``copies`` samples per prompt) as
    ``Generation`` rows, one per prompt.

    vLLM keeps the EOS token in ``token_ids`` and stops after the token that completed a stop string,
    so the cuts below normally change nothing; they make the records identical to the HF backend's
    whatever the engine did (and decide the finish reason, which TRL does not pass on).
    """
    expected = len(prompt_ids) * copies
    if len(completion_ids) != expected:
        raise RuntimeError(f"vLLM returned {len(completion_ids)} completions for {len(prompt_ids)} prompts x {copies}")
    if logprobs is None or logprob_token_ids is None:
        raise RuntimeError("vLLM returned no log-probs; the engine must be created with logprobs=0")
    rows: list[list[Generation]] = []
    for i, prompt in enumerate(prompt_ids):
        row = []
        for k in range(i * copies, (i + 1) * copies):
            ids = [int(t) for t in completion_ids[k]]
            picked = sampled_logprobs(ids, logprobs[k], logprob_token_ids[k], where=f"completion {k}")
            row.append(finish(list(prompt), ids, picked, params, eos_token_ids, decode))
        rows.append(row)
    return rows


def sampled_logprobs(ids: Sequence[int], logprobs: Sequence[Sequence[float | None]],
                     token_ids: Sequence[Sequence[int]], where: str = "") -> list[float]:
    """The log-prob of each sampled token, found by token id among the candidates vLLM reported
    (with ``logprobs=0`` there is one, the sampled token; with more it need not come first)."""
    if not len(logprobs) == len(token_ids) == len(ids):
        raise RuntimeError(f"vLLM {where}: {len(ids)} tokens but {len(logprobs)} log-prob positions")
    out = []
    for t, (token, values, candidates) in enumerate(zip(ids, logprobs, token_ids)):
        at = next((j for j, c in enumerate(candidates) if int(c) == token), None)
        if at is None:
            raise RuntimeError(f"vLLM {where}: no log-prob reported for sampled token {token} at position {t}")
        value = values[at]
        if value is None:
            raise RuntimeError(f"vLLM {where}: log-prob of token {token} at position {t} is NaN")
        out.append(float(value))
    return out
