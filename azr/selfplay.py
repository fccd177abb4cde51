"""Absolute Zero self-play, top to bottom: one step, then the training loop.

One policy plays two roles over three task types (deduction, abduction, induction):

  1. PLAN      for each type, B proposer prompts showing K reference tasks, and B tasks for the solver,
               all drawn from the buffer as it stands at the start of the step
  2. GENERATE  proposals and solver answers in one generation call
  3. VALIDATE  every proposal in one batched sandbox call (parse, deny list, determinism, timeout)
  4. LEARN.    n solver rollouts per valid proposal (sampled, never greedy) -> solve rate p ->
               proposer reward 1 - p when 0 < p < 1 (else ``extreme_solve_rate_reward``);
               -0.5 for a well-formed invalid proposal, -1 for a format error.
               Solver reward: 1 when the executor verifies the answer, else the same format scheme
  5. STORE     valid proposals enter the task buffer (the solver draws them from the next step on)
  6. ADVANTAGE Task-Relative REINFORCE++: normalised within each (type, role) group (6 groups)
  7. UPDATE    one PPO-clip update over both roles (ratio against the rollout-time log-probs); with
               per-role LoRA adapters each role's micro-batches train its own adapter (:mod:`azr.lora`)

Under ``accelerate launch`` the same step runs on every process: rank 0 alone touches the buffer, and
generation, sandbox work and back-propagation are split across ranks (:mod:`azr.distributed`; with
FSDP the ranks also step in lockstep through every sharded forward, :mod:`azr.fsdp`).

Building blocks live in small modules: rewards/advantages/loss in :mod:`azr.rl`, tasks in
:mod:`azr.tasks`, the buffer in :mod:`azr.buffer`, generation in :mod:`azr.generation`, setup in
:mod:`azr.components`, checkpoints in :mod:`azr.checkpoint`.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from azr import checkpoint, lora
from azr.components import Components, build_components, wrap_prompt
from azr.config import Config
from azr.generation import Generation, SamplingParams, sequence_logprobs
from azr.rl import ppo_clip_loss, task_relative_advantages
from azr.tasks import (
    ParseError,
    Task,
    ValidationConfig,
    candidate_from_reply,
    check_replies,
    get_task_type,
    validate,
)
from azr.tasks.checking import CheckConfig

ROLES = ("propose", "solve")


@dataclass
class Sample:
    """One trained sequence: a prompt, the sampled completion, its rollout-time log-probs, a reward."""

    role: str
    task_type: str
    prompt_ids: list[int]
    completion_ids: list[int]
    logprobs: list[float]
    reward: float
    text: str = ""


@dataclass
class Request:
    """One prompt to generate for: ``n`` samples of at most ``max_new_tokens`` in ``role``."""

    prompt: str
    role: str
    max_new_tokens: int
    n: int = 1


@dataclass
class Plan:
    """What a step works on, drawn from the buffer by rank 0 and shared with every rank."""

    propose: list[tuple[str, list[Task], str]]  # (type, references, prompt text)
    solve: list[tuple[Task, str]]  # (task, prompt text)


@dataclass
class StepLog:
    """Metrics of one step, plus a few examples to print."""

    metrics: dict[str, float] = field(default_factory=dict)
    examples: list[str] = field(default_factory=list)

    def add(self, name: str, value: float) -> None:
        self.metrics[name] = float(value)


def selfplay_step(c: Components, step: int) -> StepLog:
    cfg, log, d = c.cfg, StepLog(), c.dist
    types = list(cfg.tasks.types)
    n = cfg.rl.learnability_rollouts
    cap_propose, cap_solve = cfg.generation.max_new_tokens_propose, cfg.generation.max_new_tokens_solve
    vcfg = validation_config(cfg)
    ccfg = CheckConfig(timeout_s=cfg.sandbox.timeout_s)
    timer = Timer()

    # ---- 1. PLAN: B proposer prompts per type (K same-type references each) and B solver tasks per type --
    # Rank 0 reads the buffer; every rank works on the same plan.
    plan = d.broadcast(plan_step(c, log) if d.is_main else None)
    propose_prompts, solve_items = plan.propose, plan.solve

    # ---- 2. GENERATE proposals and solver answers in one call (split across ranks) ----------------------
    with timer("generation"):
        outputs = generate(c, [Request(text, "propose", cap_propose) for _, _, text in propose_prompts]
                           + [Request(text, "solve", cap_solve) for _, text in solve_items])
    proposals, answers = outputs[: len(propose_prompts)], outputs[len(propose_prompts) :]

    # ---- 3. VALIDATE every well-formed proposal in one batched sandbox call ------------------------------
    candidates: list[Task | ParseError] = [
        candidate_from_reply(t, g[0].text, refs, step) for (t, refs, _), g in zip(propose_prompts, proposals)
    ]
    to_validate = [cand for cand in candidates if isinstance(cand, Task)]
    with timer("sandbox"):
        outcomes = iter(d.map(lambda tasks: validate(c.sandbox, tasks, vcfg), to_validate))
    verdicts: list[Any] = [next(outcomes) if isinstance(cand, Task) else cand for cand in candidates]
    valid = [(i, v.task) for i, v in enumerate(verdicts) if not isinstance(v, ParseError) and v.ok]

    # ---- 4. LEARNABILITY: n sampled solver rollouts per valid proposal; check them with the answers ------
    with timer("generation"):
        rollouts = generate(c, [Request(solve_prompt(c, task), "solve", cap_solve, n) for _, task in valid])
    replies = [(task, g.text) for (_, task), gs in zip(valid, rollouts) for g in gs]
    replies += [(task, g[0].text) for (task, _), g in zip(solve_items, answers)]
    with timer("sandbox"):
        checks = d.map(lambda pairs: check_replies(c.sandbox, pairs, ccfg), replies)
    rollout_checks, solve_checks = checks[: len(valid) * n], checks[len(valid) * n :]
    successes = [sum(v.correct for v in rollout_checks[k * n : (k + 1) * n]) for k in range(len(valid))]

    # rewards: proposers in prompt order, then solvers
    scheme, samples = cfg.rl.rewards, []
    solved_by_index = {i: s for (i, _), s in zip(valid, successes)}
    for k, ((t, _refs, _), gens, verdict) in enumerate(zip(propose_prompts, proposals, verdicts)):
        if isinstance(verdict, ParseError):
            reward = scheme.proposer("format_error")
        elif not verdict.ok:
            reward = scheme.proposer("invalid")
        else:
            reward = scheme.proposer("valid", solved_by_index[k], n)
        samples.append(to_sample("propose", t, gens[0], reward))
    for (task, _), gens, v in zip(solve_items, answers, solve_checks):
        outcome = "correct" if v.correct else ("wrong" if v.well_formatted else "format_error")
        samples.append(to_sample("solve", task.type, gens[0], scheme.solver(outcome)))

    # ---- 5. STORE the valid proposals (deduplicated by normalised AST) and the solve history (rank 0) ----
    rejections = Counter(f"{type_of(v)}:{reason_of(v)}" for v in verdicts if reason_of(v))
    stored = []
    if d.is_main:
        stored = c.buffer.insert_many([task for _, task in valid])
        c.buffer.record_solves(step, [(res.id, n, s) for res, s in zip(stored, successes)]
                               + [(task.id, 1, int(v.correct)) for (task, _), v in zip(solve_items, solve_checks)
                                  if task.id is not None])
        for t in types:
            counts = {k.split(":", 1)[1]: m for k, m in rejections.items() if k.startswith(t + ":")}
            if counts:
                c.buffer.log_rejections(step, counts, source="proposer", task_type=t)
        for (_, task), res in zip(valid, stored):
            task.id = res.id

    # ---- 6. ADVANTAGES: Task-Relative REINFORCE++ over the 6 (type, role) groups ------------------------
    groups = [(s.task_type, s.role) for s in samples]
    advantages = task_relative_advantages([s.reward for s in samples], groups, eps=cfg.rl.advantage_eps,
                                          std=cfg.rl.advantage_std, clip=cfg.rl.advantage_clip)

    # ---- 7. UPDATE: one PPO-clip update over both roles (each rank back-propagates its shard) ----------
    with timer("update"):
        update_stats = ppo_update(c, samples, advantages)

    # ---- metrics ---------------------------------------------------------------------------------------
    for t in types:
        props = [(v, g) for (tt, _, _), v, g in zip(propose_prompts, verdicts, proposals) if tt == t]
        n_valid = sum(1 for v, _ in props if not isinstance(v, ParseError) and v.ok)
        n_format = sum(1 for v, _ in props if isinstance(v, ParseError))
        log.add(f"propose/{t}/valid_rate", n_valid / len(props) if props else 0.0)
        log.add(f"propose/{t}/format_error_rate", n_format / len(props) if props else 0.0)
        rates = [s / n for (i, task), s in zip(valid, successes) if task.type == t]
        learn = [1 - r if 0 < r < 1 else 0.0 for r in rates]
        log.add(f"propose/{t}/learnability", sum(learn) / len(learn) if learn else 0.0)
        log.add(f"propose/{t}/solve_rate", sum(rates) / len(rates) if rates else 0.0)
        solved = [v for (task, _), v in zip(solve_items, solve_checks) if task.type == t]
        log.add(f"solve/{t}/accuracy", sum(v.correct for v in solved) / len(solved) if solved else 0.0)
        log.add(f"solve/{t}/format_error_rate",
                sum(not v.well_formatted for v in solved) / len(solved) if solved else 0.0)
        if d.is_main:
            log.add(f"buffer/{t}/size", c.buffer.count_type(t))
        for role in ROLES:
            idx = [k for k, g in enumerate(groups) if g == (t, role)]
            if idx:
                r = torch.tensor([samples[k].reward for k in idx])
                a = advantages[idx]
                log.add(f"reward/{t}/{role}/mean", r.mean().item())
                log.add(f"reward/{t}/{role}/std", r.std().item() if len(idx) > 1 else 0.0)
                log.add(f"advantage/{t}/{role}/mean", a.mean().item())
                log.add(f"advantage/{t}/{role}/std", a.std().item() if len(idx) > 1 else 0.0)
    for reason, m in sorted(rejections.items()):
        log.add(f"propose/rejected/{reason.replace(':', '/')}", m)
    if d.is_main:
        log.add("buffer/added", sum(r.status == "added" for r in stored))
        log.add("buffer/duplicates", sum(r.status != "added" for r in stored))
    for key, value in update_stats.items():
        log.add(key, value)
    lengths = [len(s.completion_ids) for s in samples]
    gen_tokens = sum(lengths) + sum(len(g.completion_ids) for gs in rollouts for g in gs)
    log.add("lengths/completion_mean", sum(lengths) / len(lengths) if lengths else 0.0)
    log.add("lengths/completion_max", max(lengths, default=0))
    slowest = d.max_stats({p: timer.totals.get(p, 0.0) for p in ("generation", "sandbox", "update")})
    for phase, seconds in slowest.items():  # the slowest rank sets the pace
        log.add(f"time/{phase}_s", seconds)
    log.add("throughput/generated_tokens", gen_tokens)
    log.add("throughput/tokens_per_s", gen_tokens / log.metrics["time/generation_s"]
            if log.metrics["time/generation_s"] > 0 else 0.0)
    log.examples = examples(valid, solve_items, answers, solve_checks)
    return log


# ---- pieces of the step -----------------------------------------------------------------------------


def validation_config(cfg: Config) -> ValidationConfig:
    kwargs: dict[str, Any] = dict(timeout_s=cfg.sandbox.timeout_s, check_determinism=cfg.tasks.check_determinism,
                                  max_program_chars=cfg.tasks.max_program_chars,
                                  max_output_chars=cfg.tasks.max_output_chars)
    if cfg.tasks.banned_modules is not None:
        kwargs["banned_modules"] = frozenset(cfg.tasks.banned_modules)
    return ValidationConfig(**kwargs)


def plan_step(c: Components, log: StepLog) -> Plan:
    """Rank 0: B proposer prompts and B solver tasks per type, from the buffer as it stands now.

    The solver's tasks are drawn before this step's proposals are stored (they join the draw from the
    next step), so proposals and answers are generated together in one call, as in the paper's loop
    where a step's solver batch comes from the buffer."""
    cfg = c.cfg
    B, K = cfg.rl.batch_per_type_role, cfg.tasks.references
    propose: list[tuple[str, list[Task], str]] = []
    solve: list[tuple[Task, str]] = []
    for t in cfg.tasks.types:
        for _ in range(B):
            refs = sample_references(c, t, K)
            if refs is not None:
                propose.append((t, refs, wrap_prompt(c, get_task_type(t).propose_prompt(refs, cfg.tasks.prompt_style))))
        solve += [(task, solve_prompt(c, task)) for task in c.buffer.sample(t, B, c.rng, replace=True)]
    return Plan(propose=[p for p in propose if fits(c, p[2], log, "propose")],
                solve=[s for s in solve if fits(c, s[1], log, "solve")])


def sample_references(c: Components, task_type: str, k: int) -> list[Task] | None:
    """K same-type references; induction proposers are shown one deduction/abduction program."""
    if task_type == "induction":
        pools = [t for t in ("deduction", "abduction") if c.buffer.count_type(t)]
        if not pools:
            return None
        return c.buffer.sample(c.rng.choice(pools), 1, c.rng)
    refs = c.buffer.sample(task_type, k, c.rng)
    return refs or None


def solve_prompt(c: Components, task: Task) -> str:
    return wrap_prompt(c, get_task_type(task.type).solve_prompt(task, c.cfg.tasks.prompt_style))


def fits(c: Components, prompt: str, log: StepLog, role: str) -> bool:
    """Prompts over the token budget are dropped, never truncated (a cut prompt changes the task)."""
    ok = len(c.generator.encode(prompt)) <= c.cfg.generation.max_prompt_tokens
    if not ok:
        log.metrics[f"{role}/dropped_long_prompts"] = log.metrics.get(f"{role}/dropped_long_prompts", 0) + 1
    return ok


def generate(c: Components, requests: list[Request]) -> list[list[Generation]]:
    """Samples for each request, in order; requests are split across ranks."""
    g = c.cfg.generation

    def local(reqs: list[Request]) -> list[list[Generation]]:
        params = [SamplingParams(max_new_tokens=r.max_new_tokens, temperature=g.temperature, top_p=g.top_p,
                                 top_k=g.top_k, n=r.n, stop=tuple(g.stop)) for r in reqs]
        return c.generator.generate([r.prompt for r in reqs], params, roles=[r.role for r in reqs])

    # FSDP: every rank takes part in every forward, even with nothing of its own to generate
    return c.dist.map(local, requests, every_rank=c.dist.fsdp is not None) if requests else []


class Timer:
    """Wall time per phase, summed over the step (``with timer("sandbox"): ...``)."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, phase: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.totals[phase] = self.totals.get(phase, 0.0) + time.perf_counter() - t0


def to_sample(role: str, task_type: str, gen: Generation, reward: float) -> Sample:
    return Sample(role, task_type, list(gen.prompt_ids), list(gen.completion_ids), list(gen.logprobs), reward,
                  gen.text)


def type_of(verdict: Any) -> str:
    return "" if isinstance(verdict, ParseError) else verdict.task.type


def reason_of(verdict: Any) -> str:
    if isinstance(verdict, ParseError) or verdict.ok:
        return ""
    return verdict.rejection.value


def ppo_update(c: Components, samples: list[Sample], advantages: torch.Tensor) -> dict[str, float]:
    """PPO-clip over all samples: micro-batches accumulate into one optimiser step per epoch.

    Each rank back-propagates every ``world``-th sample (longest first); the loss shares one denominator
    over all samples, so the summed gradients across ranks are the full-batch gradient. Under FSDP every
    forward/backward is a collective: a rank with fewer micro-batches pads with zero-weight ones."""
    cfg = c.cfg.rl
    usable = [k for k, s in enumerate(samples) if s.completion_ids]
    if not usable:
        return {"loss/skipped": 1.0}
    total_tokens = sum(len(samples[k].completion_ids) for k in usable)
    denominator = float(total_tokens) if cfg.loss_aggregation == "token-mean" else float(len(usable))
    if cfg.loss_aggregation == "seq-mean-token-sum-norm":
        denominator = float(len(usable) * max(len(samples[k].completion_ids) for k in usable))
    # Longest first: with one optimiser step per epoch the order does not change the gradient, and
    # similar lengths in a micro-batch waste little padding.
    order = sorted(usable, key=lambda k: -(len(samples[k].prompt_ids) + len(samples[k].completion_ids)))
    order = order[c.dist.rank :: c.dist.world]
    params = lora.trainable_parameters(c.model)  # every adapter (per-role: both), else all weights
    model, sums, tokens, ratio_max, grad_norm = c.model, Counter(), 0.0, 0.0, 0.0
    per_role = lora.role_adapters(model) is not None
    batches: list[list[int] | None] = list(micro_batches(samples, order, cfg.micro_batch_size, by_role=per_role))
    if c.dist.fsdp is not None:  # None: a zero-weight pass over one sample, only to join the collectives
        batches += [None] * (int(c.dist.max(len(batches))) - len(batches))
    model.train()
    for _epoch in range(cfg.ppo_epochs):
        for micro in batches:
            idx = micro if micro is not None else usable[:1]
            batch = [samples[k] for k in idx]
            lora.use_role(model, batch[0].role)  # per-role LoRA: this role's adapter alone runs and trains
            prompts, completions = [s.prompt_ids for s in batch], [s.completion_ids for s in batch]
            logp, mask, entropy = sequence_logprobs(
                model, prompts, completions, c.generator.pad_token_id,
                temperature=c.cfg.generation.temperature, with_entropy=True, entropy_grad=cfg.entropy_coef > 0)
            old = torch.zeros_like(logp)
            for b, s in enumerate(batch):
                old[b, : len(s.logprobs)] = torch.tensor(s.logprobs[: logp.shape[1]], dtype=old.dtype)
            ref = None
            if cfg.kl_coef and c.ref_model is not None:
                with torch.no_grad(), lora.adapters_off(c.ref_model):  # LoRA: the reference is the bare base
                    ref, _, _ = sequence_logprobs(c.ref_model, prompts, completions, c.generator.pad_token_id,
                                                  temperature=c.cfg.generation.temperature)
            out = ppo_clip_loss(logp, old, advantages[idx].to(logp.device), mask,
                                clip_eps_low=cfg.clip_eps, clip_eps_high=cfg.clip_eps_high, dual_clip=cfg.dual_clip,
                                aggregation=cfg.loss_aggregation, denominator=denominator, logp_ref=ref,
                                kl_coef=cfg.kl_coef, entropy=entropy, entropy_coef=cfg.entropy_coef)
            (out.loss if micro is not None else out.loss * 0.0).backward()
            if micro is None:
                continue
            # Losses of micro-batches are partial sums of the full-batch loss (shared denominator):
            # add them up. Per-token ratios are averaged weighted by their token counts.
            n_tok = float(mask.sum())
            for key, value in out.stats.items():
                if key in _PARTIAL_SUMS:
                    sums[key] += value
                elif key == "ratio_max":
                    ratio_max = max(ratio_max, value)
                elif not math.isnan(value):
                    sums[key] += value * n_tok
            tokens += n_tok
        c.dist.sum_gradients(params)
        if cfg.grad_clip:
            norm = torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            grad_norm = float(norm.full_tensor() if hasattr(norm, "full_tensor") else norm)  # FSDP: a DTensor
        c.optimizer.step()
        c.scheduler.step()
        c.optimizer.zero_grad(set_to_none=True)
    lora.use_role(model, lora.DEFAULT_ROLE)
    c.generator.sync_weights(model)  # the next rollouts sample from the updated policy (vLLM: push the weights)
    epochs = max(cfg.ppo_epochs, 1)
    sums = Counter(c.dist.sum_stats({**sums, "__tokens": tokens}))
    tokens, ratio_max = sums.pop("__tokens"), c.dist.max(ratio_max)
    stats = {f"loss/{k}": (v / epochs if k in _PARTIAL_SUMS else v / max(tokens, 1.0)) for k, v in sums.items()}
    stats["loss/total"] = stats.pop("loss/loss", 0.0)
    stats["loss/ratio_max"] = ratio_max
    stats["loss/grad_norm"] = grad_norm
    stats["loss/lr"] = c.scheduler.get_last_lr()[0]
    return stats


_PARTIAL_SUMS = ("loss", "pg_loss", "kl_ref", "entropy")


def micro_batches(samples: list[Sample], order: list[int], size: int, by_role: bool) -> list[list[int]]:
    """Consecutive slices of ``order``; ``by_role`` keeps each slice to one role (per-role adapters)."""
    groups = [[k for k in order if samples[k].role == role] for role in ROLES] if by_role else [order]
    return [group[start : start + size] for group in groups for start in range(0, len(group), size)]


def examples(valid: list, solve_items: list, answers: list, checks: list, k: int = 2) -> list[str]:
    out = [f"proposed {task.type} #{task.id}: {task.program.strip()[:160]!r} input {task.inputs[0][:60]!r}"
           for _, task in valid[:k]]
    for (task, _), gens, v in list(zip(solve_items, answers, checks))[:k]:
        out.append(f"solved {task.type} #{task.id}: {'correct' if v.correct else 'wrong'}: {gens[0].text[-120:]!r}")
    return out


# ---- the training loop ------------------------------------------------------------------------------


def train(cfg: Config) -> Path:
    """Run self-play from ``cfg`` (resuming when a checkpoint exists); returns the final checkpoint."""
    from azr.progress import StepProgress

    c = build_components(cfg)
    try:
        start = c.start_step
        with StepProgress(cfg.trainer.max_steps, start, disable=not c.dist.is_main) as progress:
            for step in range(start + 1, cfg.trainer.max_steps + 1):
                t0 = time.perf_counter()
                log = selfplay_step(c, step)
                log.add("time/step_s", time.perf_counter() - t0)
                c.logger.log(step, log.metrics)
                if cfg.trainer.log_every and step % cfg.trainer.log_every == 0:
                    for line in log.examples:
                        progress.note(line)
                if cfg.trainer.save_every and step % cfg.trainer.save_every == 0:
                    checkpoint.save(c, step)
                progress.advance(log.metrics)
            final = checkpoint.save(c, cfg.trainer.max_steps) if cfg.trainer.max_steps > start else c.latest
        return Path(final) if final else Path(cfg.trainer.output_dir)
    finally:
        c.close()

