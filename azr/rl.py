"""The RL math of Absolute Zero as small pure functions: rewards, TRR++ advantages, the PPO-clip loss.

Nothing here touches a model, a tokenizer or the sandbox: inputs are verdicts, rewards and log-prob
tensors, so every formula is tested against hand-computed numbers (tests/azr/test_rl.py).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import torch

ProposalOutcome = Literal["format_error", "invalid", "valid"]
SolveOutcome = Literal["format_error", "wrong", "correct"]
LossAggregation = Literal[
    "token-mean", "seq-mean-token-mean", "seq-mean-token-sum", "seq-mean-token-sum-norm"
]
StdKind = Literal["unbiased", "population"]

LOSS_AGGREGATIONS: tuple[str, ...] = (
    "token-mean",
    "seq-mean-token-mean",
    "seq-mean-token-sum",
    "seq-mean-token-sum-norm",
)


# --- rewards ----------------------------------------------------------------------------------------


def learnability_from_counts(successes: int, attempts: int) -> float:
    """Paper Eq. 4: ``1 - p`` for the Monte-Carlo solve rate ``p = successes / attempts``, but 0 when the
    task is always or never solved (``p`` in {0, 1}): such a task teaches the solver nothing."""
    if attempts <= 0:
        raise ValueError(f"learnability: attempts must be > 0, got {attempts}")
    if not 0 <= successes <= attempts:
        raise ValueError(f"learnability: successes must be in [0, {attempts}], got {successes}")
    if successes in (0, attempts):
        return 0.0
    return 1.0 - successes / attempts


def learnability(successes: Sequence[bool]) -> float:
    """Learnability of a proposed task from its solver rollouts' verdicts (see learnability_from_counts)."""
    return learnability_from_counts(sum(bool(s) for s in successes), len(successes))


@dataclass
class RewardScheme:
    """The composite reward values (paper Eq. 6). Also the ``rl.rewards`` section of the run config.

    Proposer: ``proposer_format_error`` when the response cannot be parsed, ``proposer_invalid`` when it
    parses but the task fails validation, else the learnability ``1 - p``. A valid task whose solve rate
    ``p`` is 0 or 1 gets ``extreme_solve_rate_reward``: 0.0 in the paper (Eq. 4), -0.5 in the official
    code (issue #37), which then ranks a trivial or impossible task as low as a broken one.
    Solver: ``solver_correct`` when verified, ``solver_wrong`` when well-formed but wrong,
    ``solver_format_error`` when the answer cannot be parsed.
    """

    proposer_format_error: float = -1.0
    proposer_invalid: float = -0.5
    extreme_solve_rate_reward: float = 0.0
    solver_correct: float = 1.0
    solver_wrong: float = -0.5
    solver_format_error: float = -1.0

    def proposer(self, outcome: ProposalOutcome, successes: int = 0, attempts: int = 0) -> float:
        """Reward of one proposal; ``successes``/``attempts`` are its learnability rollouts (valid only)."""
        if outcome == "format_error":
            return self.proposer_format_error
        if outcome == "invalid":
            return self.proposer_invalid
        if outcome != "valid":
            raise ValueError(
                f"proposer reward: unknown outcome {outcome!r}; expected format_error|invalid|valid"
            )
        if attempts <= 0:
            raise ValueError("proposer reward: a valid proposal needs attempts > 0 learnability rollouts")
        value = learnability_from_counts(successes, attempts)  # also checks the counts
        return self.extreme_solve_rate_reward if successes in (0, attempts) else value

    def solver(self, outcome: SolveOutcome) -> float:
        """Reward of one solver answer."""
        values = {
            "correct": self.solver_correct,
            "wrong": self.solver_wrong,
            "format_error": self.solver_format_error,
        }
        if outcome not in values:
            raise ValueError(
                f"solver reward: unknown outcome {outcome!r}; expected format_error|wrong|correct"
            )
        return values[outcome]


# --- advantages ---------------------------------------------------------------------------------------


def task_relative_advantages(
    rewards: Sequence[float] | torch.Tensor,
    groups: Sequence[Hashable],
    *,
    eps: float = 1e-6,
    std: StdKind = "unbiased",
    clip: float | None = None,
) -> torch.Tensor:
    """Task-Relative REINFORCE++ (paper Eq. 8): ``A = (r - mean_g) / (std_g + eps)`` per sequence, with
    the statistics taken separately within each group (one group per (task type, role), six in all).

    Per *sequence*, not token-weighted as in the official code (there long responses weigh more in the
    mean and std). ``std="unbiased"`` (n - 1, what veRL's whitening and TRL's GRPO use) or
    ``"population"`` (n). A group of one sample has no baseline and gets 0, as does a group whose rewards
    are all equal (no signal). ``clip`` bounds |A| when given.
    """
    r = torch.as_tensor(rewards, dtype=torch.float64).flatten()
    if len(groups) != r.numel():
        raise ValueError(f"task_relative_advantages: {r.numel()} rewards but {len(groups)} group labels")
    if std not in ("unbiased", "population"):
        raise ValueError(f"task_relative_advantages: std must be 'unbiased' or 'population', got {std!r}")
    if clip is not None and clip <= 0:
        raise ValueError(f"task_relative_advantages: clip must be > 0, got {clip}")
    out = torch.zeros_like(r)
    members: dict[Hashable, list[int]] = {}
    for i, g in enumerate(groups):
        members.setdefault(g, []).append(i)
    for idx_list in members.values():
        idx = torch.tensor(idx_list)
        values = r[idx]
        if values.numel() < 2 or bool((values == values[0]).all()):
            continue
        spread = values.std(correction=1 if std == "unbiased" else 0)
        out[idx] = (values - values.mean()) / (spread + eps)
    if clip is not None:
        out = out.clamp(-clip, clip)
    return out.float()


# --- policy loss -----------------------------------------------------------------------------------------


@dataclass
class PolicyLoss:
    """The loss to minimise and detached statistics for logging (keys without a prefix)."""

    loss: torch.Tensor
    stats: dict[str, float] = field(default_factory=dict)


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (values * mask).sum() / mask.sum().clamp(min=1)


def aggregate(
    token_values: torch.Tensor,
    mask: torch.Tensor,
    mode: LossAggregation = "token-mean",
    denominator: float | None = None,
) -> torch.Tensor:
    """Reduce per-token values ``(batch, time)`` to a scalar.

    ``token-mean``: mean over every valid token of the batch (long answers weigh more);
    ``seq-mean-token-mean``: mean over sequences of each sequence's token mean (each answer weighs 1);
    ``seq-mean-token-sum``: mean over sequences of token sums;
    ``seq-mean-token-sum-norm``: token sum divided by ``batch * time`` (Dr. GRPO's constant normaliser).
    ``denominator`` overrides the batch-level normaliser (total tokens for token-mean, total sequences
    for the seq-* modes, ``total sequences * time`` for -norm) so that gradient-accumulation micro-batches
    add up to the full-batch loss.
    """
    mask = mask.to(token_values.dtype)
    if mode == "token-mean":
        denom = mask.sum().clamp(min=1) if denominator is None else denominator
        return (token_values * mask).sum() / denom
    seq_sums = (token_values * mask).sum(-1)
    has_tokens = mask.sum(-1) > 0
    if mode == "seq-mean-token-mean":
        per_seq = seq_sums / mask.sum(-1).clamp(min=1)
        denom = has_tokens.sum().clamp(min=1) if denominator is None else denominator
        return per_seq.sum() / denom
    if mode == "seq-mean-token-sum":
        denom = has_tokens.sum().clamp(min=1) if denominator is None else denominator
        return seq_sums.sum() / denom
    if mode == "seq-mean-token-sum-norm":
        denom = mask.shape[0] * mask.shape[-1] if denominator is None else denominator
        return seq_sums.sum() / denom
    raise ValueError(
        f"loss aggregation: unknown mode {mode!r}; expected one of {', '.join(LOSS_AGGREGATIONS)}"
    )


def kl_k3(logp: torch.Tensor, logp_ref: torch.Tensor) -> torch.Tensor:
    """Per-token k3 estimator of KL(pi || ref): ``exp(ref - logp) - (ref - logp) - 1`` (>= 0, unbiased)."""
    delta = logp_ref - logp
    return torch.exp(delta) - delta - 1


def ppo_clip_loss(
    logp_new: torch.Tensor,
    logp_old: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    *,
    clip_eps_low: float = 0.2,
    clip_eps_high: float | None = None,
    dual_clip: float | None = None,
    aggregation: LossAggregation = "token-mean",
    denominator: float | None = None,
    logp_ref: torch.Tensor | None = None,
    kl_coef: float = 0.0,
    entropy: torch.Tensor | None = None,
    entropy_coef: float = 0.0,
) -> PolicyLoss:
    """PPO clipped surrogate on tokens, with optional clip-higher, dual clip, KL to a reference and
    entropy bonus.

    ``ratio = exp(logp_new - logp_old)``; per token ``max(-A * ratio, -A * clip(ratio, 1 - eps_low,
    1 + eps_high))``; with ``dual_clip = c`` (> 1) the loss of negative-advantage tokens is also capped
    at ``-A * c``. ``advantages`` is per sequence ``(batch,)`` or per token ``(batch, time)``. The KL
    term (k3, needs ``logp_ref``) is added with ``kl_coef`` and the mean entropy is subtracted with
    ``entropy_coef``; both default to 0, as in the paper (whose paper branch used entropy 0.001).
    Stats: ``pg_loss``, ``clip_frac`` (tokens where the clipped branch is active), ``approx_kl``
    (k3 of new vs. old policy), ``ratio_mean``, ``ratio_max`` and, when given, ``kl_ref``, ``entropy``.
    """
    if clip_eps_high is None:
        clip_eps_high = clip_eps_low
    if not 0 < clip_eps_low < 1 or clip_eps_high <= 0:
        raise ValueError(
            f"ppo_clip_loss: need 0 < clip_eps_low < 1 and clip_eps_high > 0, got {clip_eps_low}, {clip_eps_high}"
        )
    if dual_clip is not None and dual_clip <= 1:
        raise ValueError(f"ppo_clip_loss: dual_clip must be > 1, got {dual_clip}")
    if kl_coef and logp_ref is None:
        raise ValueError("ppo_clip_loss: kl_coef > 0 needs logp_ref (reference-model log-probs)")
    if entropy_coef and entropy is None:
        raise ValueError("ppo_clip_loss: entropy_coef > 0 needs per-token entropy")
    mask = mask.to(logp_new.dtype)
    adv = advantages.to(logp_new.dtype)
    if adv.dim() == 1:
        adv = adv.unsqueeze(-1)
    log_ratio = logp_new - logp_old.detach()
    ratio = torch.exp(log_ratio)
    unclipped = -adv * ratio
    clipped = -adv * ratio.clamp(1 - clip_eps_low, 1 + clip_eps_high)
    token_loss = torch.maximum(unclipped, clipped)
    if dual_clip is not None:
        token_loss = torch.where(adv < 0, torch.minimum(token_loss, -adv * dual_clip), token_loss)
    pg_loss = aggregate(token_loss, mask, aggregation, denominator)
    loss = pg_loss
    with torch.no_grad():
        valid = mask.bool()
        stats = {
            "pg_loss": pg_loss.item(),
            "clip_frac": masked_mean((clipped > unclipped).to(mask.dtype), mask).item(),
            "approx_kl": masked_mean(kl_k3(logp_new, logp_old), mask).item(),
            "ratio_mean": masked_mean(ratio, mask).item(),
            "ratio_max": ratio[valid].max().item() if valid.any() else math.nan,
        }
    if logp_ref is not None:
        kl = aggregate(kl_k3(logp_new, logp_ref.detach()), mask, aggregation, denominator)
        stats["kl_ref"] = kl.item()
        if kl_coef:
            loss = loss + kl_coef * kl
    if entropy is not None:
        ent = aggregate(entropy, mask, aggregation, denominator)
        stats["entropy"] = ent.item()
        if entropy_coef:
            loss = loss - entropy_coef * ent
    stats["loss"] = loss.item()
    return PolicyLoss(loss=loss, stats=stats)
