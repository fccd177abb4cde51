"""Generation backends behind one small interface, so the self-play step never sees HF vs vLLM.

Log-prob convention (the trainer's PPO ratio depends on it): ``Generation.logprobs[i]`` is
``log_softmax(logits / T)[completion_ids[i]]`` where ``logits`` are the model's raw next-token logits
from the very forward pass that sampled the token and ``T`` is the sampling temperature (``T = 1``
for greedy decoding). top-k/top-p truncation is *not* folded in: this is the same quantity the trainer
recomputes with :func:`sequence_logprobs`, so on-policy the ratio starts at exactly 1, and it is the
exact behaviour-policy log-prob whenever ``top_p == 1`` and ``top_k == 0`` (the paper's setting).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal, Protocol

import torch

FinishReason = Literal["stop", "length"]


@dataclass(frozen=True)
class SamplingParams:
    """How to sample. ``temperature == 0`` means greedy; ``top_k == 0`` and ``top_p == 1`` mean off.

    ``stop`` strings end a completion once generated (e.g. ``"</answer>"``); the stop string is kept in
    ``Generation.text`` when ``include_stop_str_in_output`` (the answer parsers want the closing tag).
    ``seed`` makes a call reproducible for the same prompts and batch size; ``None`` uses the global RNG.
    """

    max_new_tokens: int = 256
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    n: int = 1
    stop: tuple[str, ...] = ()
    include_stop_str_in_output: bool = True
    seed: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.stop, str) or not all(isinstance(s, str) and s for s in self.stop):
            raise ValueError(f"SamplingParams.stop: must be a tuple of non-empty strings, got {self.stop!r}")
        object.__setattr__(self, "stop", tuple(self.stop))
        checks = [
            ("max_new_tokens", self.max_new_tokens >= 1, "must be >= 1"),
            ("temperature", self.temperature >= 0, "must be >= 0 (0 = greedy)"),
            ("top_p", 0 < self.top_p <= 1, "must be in (0, 1]"),
            ("top_k", self.top_k >= 0, "must be >= 0 (0 = off)"),
            ("n", self.n >= 1, "must be >= 1"),
        ]
        for name, ok, why in checks:
            if not ok:
                raise ValueError(f"SamplingParams.{name}: {why}, got {getattr(self, name)!r}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


@dataclass
class Generation:
    """One sampled completion. ``completion_ids`` include the EOS token when the model emitted one (the
    policy must learn to stop) and end at the token that completed a stop string; ``logprobs`` has one
    entry per completion id (see the module docstring); ``text`` is the decoded completion without
    special tokens, cut right after (or before) the stop string."""

    prompt_ids: list[int]
    completion_ids: list[int]
    logprobs: list[float]
    text: str
    finish_reason: FinishReason


class Generator(Protocol):
    """A generation backend: for each prompt, ``params.n`` samples, in prompt order.

    ``params`` is one :class:`SamplingParams` for every prompt or one per prompt (the step sends
    proposals and solver answers, with different caps, in one call); ``roles`` names each prompt's
    role ("propose" / "solve") for backends that route roles to different adapters. ``encode`` is the
    tokenisation the trainer scores with; ``sync_weights`` is called after every update (once its
    optimiser steps are done) so the next rollouts sample from the updated policy (a no-op for a
    backend that generates with the training model itself).
    """

    pad_token_id: int

    def generate(self, prompts: Sequence[str], params: SamplingParams | Sequence[SamplingParams],
                 roles: Sequence[str] | None = None) -> list[list[Generation]]: ...

    def encode(self, prompt: str) -> list[int]: ...

    def decode(self, ids: Sequence[int]) -> str: ...

    def sync_weights(self, model: Any) -> None: ...


class _LogprobRecorder:
    """A logits processor that records the log-prob of each sampled token from the raw logits.

    transformers calls processors once per generated token, with the logits of that step, and passes
    user processors before its temperature/top-k/top-p warpers, so ``scores`` here are raw. The token
    sampled at step t is only visible at step t+1 (as ``input_ids[:, -1]``), hence the one-step lag and
    :meth:`finish`. Memory is O(batch x vocab), unlike ``output_logits`` which keeps every step.
    """

    def __init__(self, temperature: float) -> None:
        self.temperature = temperature
        self._last: torch.Tensor | None = None
        self._steps: list[torch.Tensor] = []

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self._last is not None:
            self._steps.append(self._last.gather(1, input_ids[:, -1:]).squeeze(1))
        self._last = torch.log_softmax(scores.float() / self.temperature, dim=-1)
        return scores

    def finish(self, new_tokens: torch.Tensor) -> torch.Tensor:
        """Per-token log-probs, shape ``new_tokens.shape``."""
        if self._last is not None:
            self._steps.append(self._last.gather(1, new_tokens[:, -1:]).squeeze(1))
            self._last = None
        if len(self._steps) != new_tokens.shape[1]:
            raise RuntimeError(
                f"log-prob recorder saw {len(self._steps)} steps for {new_tokens.shape[1]} generated tokens; "
                "the generation mode in use does not call logits processors once per token"
            )
        return (
            torch.stack(self._steps, dim=1)
            if self._steps
            else new_tokens.new_zeros(new_tokens.shape, dtype=torch.float)
        )


@contextlib.contextmanager
def _seeded(seed: int | None, device: torch.device) -> Iterator[None]:
    """Seed torch for the duration of a call without disturbing the caller's RNG streams."""
    if seed is None:
        yield
        return
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def _as_id_list(value: Any) -> list[int]:
    if value is None:
        return []
    if isinstance(value, int):
        return [value]
    return [int(v) for v in value]


class Tokenization:
    """What every backend shares: the tokenisation the trainer scores with, and the EOS and pad ids."""

    def __init__(self, tokenizer: Any, model_eos: Any, add_special_tokens: bool = True) -> None:
        self.tokenizer = tokenizer
        self.add_special_tokens = add_special_tokens
        self.eos_token_ids = sorted(set(_as_id_list(tokenizer.eos_token_id)) | set(_as_id_list(model_eos)))
        if not self.eos_token_ids:
            raise ValueError(f"{type(self).__name__}: neither the tokenizer nor the model's generation_config "
                             "defines an EOS token")
        pad = tokenizer.pad_token_id
        self.pad_token_id = int(pad) if pad is not None else self.eos_token_ids[0]

    def encode(self, prompt: str) -> list[int]:
        return list(self.tokenizer(prompt, add_special_tokens=self.add_special_tokens)["input_ids"])

    def decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=True)

    def encode_all(self, prompts: Sequence[str]) -> list[list[int]]:
        """Every prompt's ids; an empty one is an error (there is nothing to continue)."""
        encoded = [self.encode(p) for p in prompts]
        for i, ids in enumerate(encoded):
            if not ids:
                raise ValueError(f"{type(self).__name__}.generate: prompt {i} tokenises to nothing")
        return encoded


class HFGenerator(Tokenization):
    """Batched ``transformers`` generation with left padding and the KV cache.

    Prompts are tokenised one by one and left-padded per batch (samples of the same prompt sit together,
    and prompts are sorted by length, so little padding is wasted). The model's own
    ``generation_config`` penalties are neutralised: sampling follows ``SamplingParams`` only.
    With per-role LoRA adapters (:mod:`azr.lora`) each row is served by its role's adapter, through
    peft's mixed adapter batches, so prompts of both roles share a batch.
    """

    def __init__(
        self, model: Any, tokenizer: Any, batch_size: int = 8, add_special_tokens: bool = True,
        max_over_ranks: Callable[[int], int] | None = None, cache_implementation: str | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"HFGenerator.batch_size: must be >= 1, got {batch_size}")
        # A model sharded across ranks (FSDP) all-gathers in every forward, so the ranks must step
        # together: ``max_over_ranks`` (a collective) pads each call to the busiest rank's number of
        # ``generate`` calls, and each call keeps stepping until every rank is done (``synced_gpus``).
        self.max_over_ranks = max_over_ranks
        self.cache_implementation = cache_implementation  # transformers' KV cache kind; None = its default
        self.model = model
        self.batch_size = batch_size
        super().__init__(tokenizer, model.generation_config.eos_token_id, add_special_tokens)

    def sync_weights(self, model: Any) -> None:
        """Nothing to push: this backend samples with the training model itself."""

    def generate(
        self,
        prompts: Sequence[str],
        params: SamplingParams | Sequence[SamplingParams],
        roles: Sequence[str] | None = None,
    ) -> list[list[Generation]]:
        """``params`` is one for all prompts or one per prompt. Prompts whose params differ only in
        ``max_new_tokens`` and ``n`` share batches (each row stops at its own cap), so a caller can put
        proposals and solver answers into one call. ``roles`` (one per prompt) is for backends that
        route roles to different weights; a plain model ignores it."""
        per_prompt = [params] * len(prompts) if isinstance(params, SamplingParams) else list(params)
        if len(per_prompt) != len(prompts):
            raise ValueError(f"HFGenerator.generate: {len(prompts)} prompts but {len(per_prompt)} SamplingParams")
        if roles is not None and len(roles) != len(prompts):
            raise ValueError(f"HFGenerator.generate: {len(prompts)} prompts but {len(roles)} roles")
        from azr import lora

        adapters = lora.adapter_names(self.model, list(roles)) if roles is not None else None
        encoded = self.encode_all(prompts)
        groups: dict[SamplingParams, list[int]] = {}
        for i, p in enumerate(per_prompt):
            groups.setdefault(replace(p, max_new_tokens=1, n=1), []).append(i)
        results: list[list[Generation | None]] = [[None] * p.n for p in per_prompt]
        was_training = self.model.training
        self.model.eval()
        # FSDP's all-gathers write into parameter storage that autograd sees later: no inference mode
        no_grad = torch.no_grad if self.max_over_ranks is not None else torch.inference_mode
        try:
            padding = 0
            if self.max_over_ranks is not None:  # agreed on before any rank generates: a collective
                calls = sum(-(-len(self._jobs(members, per_prompt)) // self.batch_size) for members in groups.values())
                padding = self.max_over_ranks(calls) - calls
            for shared, members in groups.items():
                with no_grad(), _seeded(shared.seed, self.model.device):
                    self._generate_group(members, encoded, per_prompt, results, adapters)
            with no_grad():
                for _ in range(padding):  # outputs discarded
                    self._generate_batch([[self.pad_token_id]], SamplingParams(max_new_tokens=1, temperature=0))
        finally:
            self.model.train(was_training)
        for i, row in enumerate(results):
            if per_prompt[i].greedy and per_prompt[i].n > 1:  # greedy samples are identical: copy the first
                assert row[0] is not None
                row[:] = greedy_copies(row[0], per_prompt[i].n)
        return [[g for g in row if g is not None] for row in results]

    def _generate_group(self, members: list[int], encoded: list[list[int]], per_prompt: list[SamplingParams],
                        results: list[list[Generation | None]], adapters: list[str] | None) -> None:
        """Generate every sample of the prompts ``members`` (same sampling, any caps), longest first."""
        jobs = self._jobs(members, per_prompt)
        jobs.sort(key=lambda job: -len(encoded[job[0]]))  # stable: samples of a prompt stay adjacent
        for start in range(0, len(jobs), self.batch_size):
            chunk = jobs[start : start + self.batch_size]
            caps = [per_prompt[i].max_new_tokens for i, _ in chunk]
            names = [adapters[i] for i, _ in chunk] if adapters is not None else None
            gens = self._generate_batch([encoded[i] for i, _ in chunk], per_prompt[chunk[0][0]], caps, names)
            for (i, j), gen in zip(chunk, gens, strict=True):
                results[i][j] = gen

    @staticmethod
    def _jobs(members: list[int], per_prompt: list[SamplingParams]) -> list[tuple[int, int]]:
        """(prompt, sample) pairs to generate: greedy prompts once (their samples are copies)."""
        return [(i, j) for i in members for j in range(1 if per_prompt[i].greedy else per_prompt[i].n)]

    def _generation_config(self, params: SamplingParams) -> Any:
        from transformers import GenerationConfig

        sampling: dict[str, Any]
        if params.greedy:
            sampling = {"do_sample": False, "temperature": 1.0, "top_p": 1.0, "top_k": 50}  # library neutrals
        else:
            sampling = {
                "do_sample": True,
                "temperature": params.temperature,
                "top_p": params.top_p,
                "top_k": params.top_k,
            }
            if getattr(self.model.generation_config, "min_p", None) is not None:
                sampling["min_p"] = 0.0
        cache = {"cache_implementation": self.cache_implementation} if self.cache_implementation else {}
        return GenerationConfig(
            max_new_tokens=params.max_new_tokens,
            eos_token_id=self.eos_token_ids,
            pad_token_id=self.pad_token_id,
            stop_strings=list(params.stop) or None,
            repetition_penalty=1.0,
            typical_p=1.0,
            no_repeat_ngram_size=0,
            **cache,
            **sampling,
        )

    def _generate_batch(self, prompt_ids: list[list[int]], params: SamplingParams,
                        caps: list[int] | None = None, adapter_names: list[str] | None = None) -> list[Generation]:
        """One ``generate`` call; ``caps`` are per-row token limits (default: ``params.max_new_tokens``),
        ``adapter_names`` the per-row LoRA adapter (PEFT's mixed-adapter batches)."""
        from transformers import LogitsProcessorList, StoppingCriteriaList

        width = max(len(p) for p in prompt_ids)
        input_ids = torch.full((len(prompt_ids), width), self.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((len(prompt_ids), width), dtype=torch.long)
        for row, ids in enumerate(prompt_ids):
            input_ids[row, width - len(ids) :] = torch.tensor(ids, dtype=torch.long)
            attention_mask[row, width - len(ids) :] = 1
        caps = caps or [params.max_new_tokens] * len(prompt_ids)
        recorder = _LogprobRecorder(1.0 if params.greedy else params.temperature)
        device = self.model.device
        criteria = StoppingCriteriaList([_RowCap(caps, width, device)] if len(set(caps)) > 1 else [])
        routing = {"adapter_names": adapter_names} if adapter_names is not None else {}
        sequences = self.model.generate(
            input_ids=input_ids.to(device),
            attention_mask=attention_mask.to(device),
            generation_config=self._generation_config(replace(params, max_new_tokens=max(caps))),
            logits_processor=LogitsProcessorList([recorder]),
            stopping_criteria=criteria,
            tokenizer=self.tokenizer if params.stop else None,
            synced_gpus=self.max_over_ranks is not None,
            **routing,
        )
        new_tokens = sequences[:, width:]
        logprobs = recorder.finish(new_tokens).cpu()
        new_tokens = new_tokens.cpu()
        # A row past its cap was filled with padding (which may be the EOS id): cut it at the cap first.
        return [
            finish(prompt_ids[row], new_tokens[row, : caps[row]].tolist(), logprobs[row, : caps[row]].tolist(),
                   params, self.eos_token_ids, self.decode, self.pad_token_id)
            for row in range(len(prompt_ids))
        ]


def finish(prompt_ids: list[int], ids: list[int], logprobs: list[float], params: SamplingParams,
           eos_token_ids: Sequence[int], decode: Any, pad_token_id: int | None = None) -> Generation:
    """Cut one raw completion after its first EOS, at the token completing a stop string, or (batched
    generation, ``pad_token_id`` given) before the padding that filled a row which ended early; name
    why it ended. Every backend ends its completions here."""
    reason: FinishReason = "length"
    cut = len(ids)
    eos_at = next((k for k, t in enumerate(ids) if t in eos_token_ids), None)
    if eos_at is not None:
        cut, reason = eos_at + 1, "stop"
    elif pad_token_id is not None and pad_token_id not in eos_token_ids:
        while cut > 0 and ids[cut - 1] == pad_token_id:
            cut, reason = cut - 1, "stop"
    text = decode(ids[:cut])
    if params.stop:
        found = _find_stop(text, params.stop)
        if found is not None:
            cut, reason = _shortest_prefix_with_stop(ids[:cut], params.stop, decode), "stop"
            begin, end = found
            text = text[:end] if params.include_stop_str_in_output else text[:begin]
    return Generation(prompt_ids=list(prompt_ids), completion_ids=ids[:cut], logprobs=logprobs[:cut], text=text,
                      finish_reason=reason)


def greedy_copies(first: Generation, n: int) -> list[Generation]:
    """``n`` samples of a greedy completion: the first and independent copies of it (they would be equal)."""
    return [first] + [replace(first, completion_ids=list(first.completion_ids), logprobs=list(first.logprobs))
                      for _ in range(n - 1)]


class _RowCap:
    """A stopping criterion that ends each row at its own token cap (rows of one batch may differ)."""

    def __init__(self, caps: list[int], prompt_width: int, device: torch.device) -> None:
        self.caps = torch.tensor(caps, dtype=torch.long, device=device)  # once: the check runs every token
        self.prompt_width = prompt_width

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any) -> torch.BoolTensor:
        return self.caps <= input_ids.shape[1] - self.prompt_width


def _find_stop(text: str, stops: Sequence[str]) -> tuple[int, int] | None:
    """(start, end) of the stop string occurrence that ends first, or None."""
    best: tuple[int, int] | None = None
    for s in stops:
        at = text.find(s)
        if at >= 0 and (best is None or at + len(s) < best[1]):
            best = (at, at + len(s))
    return best


def _shortest_prefix_with_stop(ids: list[int], stops: Sequence[str], decode: Any) -> int:
    """Smallest m such that decode(ids[:m]) contains a stop string (binary search, O(log n) decodes)."""
    lo, hi = 1, len(ids)
    while lo < hi:
        mid = (lo + hi) // 2
        if _find_stop(decode(ids[:mid]), stops) is not None:
            hi = mid
        else:
            lo = mid + 1
    return hi


def sequence_logprobs(
    model: Any,
    prompt_ids: Sequence[Sequence[int]],
    completion_ids: Sequence[Sequence[int]],
    pad_token_id: int,
    temperature: float = 1.0,
    with_entropy: bool = False,
    entropy_grad: bool = True,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Per-token log-probs of completions given prompts, by one right-padded forward pass.

    Returns ``(logprobs, mask, entropy)``, each ``(batch, max_completion_len)`` (entropy ``None`` unless
    asked); padding positions hold 0 and ``mask`` 0. Gradients flow when called outside ``no_grad``:
    this is also the trainer's new-policy log-prob. ``temperature`` must match sampling (``1`` for greedy).
    ``entropy_grad=False`` computes the entropy for logging only (no graph kept for it).
    """
    if len(prompt_ids) != len(completion_ids):
        raise ValueError(
            f"sequence_logprobs: {len(prompt_ids)} prompts but {len(completion_ids)} completions"
        )
    if temperature <= 0:
        raise ValueError(f"sequence_logprobs.temperature: must be > 0 (use 1 for greedy), got {temperature}")
    device = model.device
    batch = len(prompt_ids)
    width = max(len(p) + len(c) for p, c in zip(prompt_ids, completion_ids, strict=True))
    comp_width = max((len(c) for c in completion_ids), default=0)
    input_ids = torch.full((batch, width), pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((batch, width), dtype=torch.long)
    # index[b, k] = position whose logits predict completion token k of row b
    index = torch.zeros((batch, comp_width), dtype=torch.long)
    targets = torch.zeros((batch, comp_width), dtype=torch.long)
    mask = torch.zeros((batch, comp_width), dtype=torch.float)
    for b, (p, c) in enumerate(zip(prompt_ids, completion_ids, strict=True)):
        if not p:
            raise ValueError(
                f"sequence_logprobs: prompt {b} is empty; a completion needs context to be scored"
            )
        full = list(p) + list(c)
        input_ids[b, : len(full)] = torch.tensor(full, dtype=torch.long)
        attention_mask[b, : len(full)] = 1
        index[b, : len(c)] = torch.arange(len(p) - 1, len(p) - 1 + len(c))
        targets[b, : len(c)] = torch.tensor(list(c), dtype=torch.long)
        mask[b, : len(c)] = 1.0
    picked = _completion_logits(model, input_ids.to(device), attention_mask.to(device), index.to(device))
    picked = picked.float() / temperature
    log_norm = torch.logsumexp(picked, dim=-1)
    logprobs = (picked.gather(-1, targets.to(device).unsqueeze(-1)).squeeze(-1) - log_norm) * mask.to(device)
    entropy = None
    if with_entropy:
        with torch.set_grad_enabled(entropy_grad and torch.is_grad_enabled()):
            probs = torch.softmax(picked, dim=-1)
            entropy = (log_norm - (probs * picked).sum(-1)) * mask.to(device)
    return logprobs, mask.to(device), entropy


def _completion_logits(model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                       index: torch.Tensor) -> torch.Tensor:
    """Logits at the positions that predict completion tokens only: ``(batch, comp_width, vocab)``.

    The output layer is applied to the gathered hidden states, not to every position (prompts are
    most of a sequence, and the vocabulary projection is the most expensive layer of a small model).
    Models that post-process their logits (soft-capping, logit scales), that hide their body behind
    a wrapper, or that are sharded with FSDP take the plain full forward pass. A peft model is unwrapped
    to its transformers model: LoRA layers sit inside it, so the active adapter (or
    ``disable_adapter()``) still applies.
    """
    from azr.fsdp import is_sharded

    if is_sharded(model):  # FSDP: only the root's forward gathers the embeddings, final norm and LM head
        logits = model(input_ids=input_ids, attention_mask=attention_mask).logits
        return logits.gather(1, index.unsqueeze(-1).expand(-1, -1, logits.shape[-1]))
    unwrap = getattr(model, "get_base_model", None)  # peft's PeftModel; plain transformers models lack it
    if callable(unwrap):
        model = unwrap()
    body = getattr(model, getattr(model, "base_model_prefix", ""), None)
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    config = getattr(model, "config", None)
    plain_head = not any(getattr(config, k, None) for k in ("final_logit_softcapping", "logit_scale"))
    if body is not None and head is not None and plain_head and isinstance(body, torch.nn.Module):
        hidden = body(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        gathered = hidden.gather(1, index.unsqueeze(-1).expand(-1, -1, hidden.shape[-1]))
        return head(gathered)
    logits = model(input_ids=input_ids, attention_mask=attention_mask).logits
    return logits.gather(1, index.unsqueeze(-1).expand(-1, -1, logits.shape[-1]))
