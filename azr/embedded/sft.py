"""A plain supervised warm-up loop: next-token loss on reply tokens only, AdamW, warmup + cosine.

Examples are bucketed by length so a batch wastes little compute on padding (on 2 CPU cores every
padded token costs as much as a real one). The number of steps is fixed, so a build is
deterministic given its seed.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase


@dataclass(frozen=True)
class Example:
    """One supervised pair; the model sees ``prompt + reply + eos`` and learns ``reply + eos``."""

    role: str
    prompt: str
    reply: str


@dataclass(frozen=True)
class SFTConfig:
    steps: int = 600
    # Padded tokens per optimizer step. Small batches and more steps learned far faster per token
    # than large ones in our sweeps (same tokens: 3072 x 400 >> 6144 x 200).
    tokens_per_batch: int = 3072
    lr: float = 3e-3
    warmup_steps: int = 20
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    max_len: int = 2048
    seed: int = 0
    device: str = "cpu"  # the default build runs on CPU; a GPU only speeds up experiments
    # Loss weight of prompt tokens (replies weigh 1). Prompts hold programs and input/output pairs,
    # so learning them too is nearly free extra supervision (the forward pass over them is paid
    # anyway); in our sweeps 1.0 beat 0.3 and 0.0 clearly on proposal validity.
    prompt_loss_weight: float = 1.0


@dataclass
class SFTResult:
    steps: int
    final_loss: float  # mean reply-token loss over the last tenth of the steps (prompt tokens excluded)
    first_loss: float
    seconds: float
    tokens_seen: int
    dropped_too_long: int


def encode(tokenizer: PreTrainedTokenizerBase, examples: Sequence[Example], max_len: int) -> tuple[list[tuple[list[int], int]], int]:
    """Token ids and prompt length of each example; prompt and reply are tokenized apart, as at
    generation time, where the model continues the tokenized prompt. Over-long examples are dropped."""
    out: list[tuple[list[int], int]] = []
    dropped = 0
    prompts = tokenizer([e.prompt for e in examples], add_special_tokens=False)["input_ids"]
    replies = tokenizer([e.reply for e in examples], add_special_tokens=False)["input_ids"]
    for p, r in zip(prompts, replies):
        ids = list(p) + list(r) + [tokenizer.eos_token_id]
        if len(ids) > max_len:
            dropped += 1
            continue
        out.append((ids, len(p)))
    return out, dropped


def make_batches(lengths: Sequence[int], tokens_per_batch: int, rng: random.Random) -> list[list[int]]:
    """Group example indices of similar length so ``len(batch) * longest <= tokens_per_batch``."""
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], rng.random()))
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        if current and (len(current) + 1) * lengths[i] > tokens_per_batch:
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    rng.shuffle(batches)
    return batches


def _collate(
    items: list[tuple[list[int], int]], pad_id: int, prompt_weight: float
) -> tuple[torch.Tensor, ...]:
    """Right-padded ids, attention mask, next-token targets, per-target loss weights, reply mask."""
    width = max(len(ids) for ids, _ in items)
    input_ids = torch.full((len(items), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(items), width), dtype=torch.long)
    targets = torch.zeros((len(items), width - 1), dtype=torch.long)
    weights = torch.zeros((len(items), width - 1))
    reply = torch.zeros((len(items), width - 1), dtype=torch.bool)
    for row, (ids, prompt_len) in enumerate(items):
        n = len(ids)
        input_ids[row, :n] = torch.tensor(ids)
        mask[row, :n] = 1
        targets[row, : n - 1] = torch.tensor(ids[1:])
        weights[row, : prompt_len - 1] = prompt_weight  # targets inside the prompt
        weights[row, prompt_len - 1 : n - 1] = 1.0  # the reply and its eos
        reply[row, prompt_len - 1 : n - 1] = True
    return input_ids, mask, targets, weights, reply


def _lr_factor(step: int, cfg: SFTConfig) -> float:
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def train(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    examples: Sequence[Example],
    cfg: SFTConfig,
    on_step: Callable[[int, float], None] | None = None,
) -> SFTResult:
    """Run ``cfg.steps`` optimizer steps over ``examples`` (cycling through epochs)."""
    encoded, dropped = encode(tokenizer, examples, cfg.max_len)
    if not encoded:
        raise ValueError("SFT corpus is empty after dropping examples longer than max_len; raise SFTConfig.max_len")
    rng = random.Random(cfg.seed)
    torch.manual_seed(cfg.seed)
    device = torch.device(cfg.device)
    model.to(device)
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lr,
        betas=(0.9, 0.95),
    )
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: _lr_factor(s, cfg))
    model.train()
    lengths = [len(ids) for ids, _ in encoded]
    batches: list[list[int]] = []
    losses: list[float] = []
    tokens = 0
    start = time.perf_counter()
    for step in range(cfg.steps):
        if not batches:
            batches = make_batches(lengths, cfg.tokens_per_batch, rng)
        batch = _collate([encoded[i] for i in batches.pop()], tokenizer.pad_token_id, cfg.prompt_loss_weight)
        input_ids, mask, targets, weights, reply = (t.to(device) for t in batch)
        logits = model(input_ids=input_ids, attention_mask=mask).logits[:, :-1].float()
        token_loss = torch.nn.functional.cross_entropy(logits.transpose(1, 2), targets, reduction="none")
        loss = (token_loss * weights).sum() / weights.sum()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        losses.append((token_loss.detach()[reply].sum() / reply.sum()).item())
        tokens += int(mask.sum())
        if on_step is not None:
            on_step(step, losses[-1])
    model.eval()
    tail = losses[-max(1, len(losses) // 10) :]
    return SFTResult(
        steps=cfg.steps,
        final_loss=sum(tail) / len(tail),
        first_loss=losses[0] if losses else float("nan"),
        seconds=time.perf_counter() - start,
        tokens_seen=tokens,
        dropped_too_long=dropped,
    )
