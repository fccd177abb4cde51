"""Benchmark one self-play step against TRL's GRPOTrainer on the same model, prompts and lengths.

    PYTHONPATH=. python scripts/bench_step.py [--steps 5] [--batch 4] [--max-new-tokens 128] [--threads 2]

Headline metric: completion tokens generated per second of wall time over full training steps
(generation + reward/sandbox + loss/backward/optimiser step + bookkeeping), after ``--warmup`` steps,
summed over ``--steps`` measured steps, for each side; the ratio ours/TRL is printed (target >= 1.3),
with the median and range of the per-step ratios. Steps are interleaved (TRL step k, then our step k,
from a TRL callback) so that load from other processes on a shared machine falls on both sides alike;
``OMP_WAIT_POLICY`` becomes PASSIVE when the machine is busy at start, for the same reason. Also
printed: our time split from the step's ``time/*`` metrics, and TRL's from its own profiling timers.

On a shared machine the absolute figures swing with other people's jobs; the ratio and the
per-pair median are what to compare, and the load average is printed before and after.

What is held equal, so the ratio measures the trainers and not the setup:
  * weights: both sides load the same saved checkpoint (a fresh copy each); float32 on CPU;
    ``torch.set_num_threads(--threads)``. By default a random Qwen2 shaped like the embedded model
    (hidden 192, 4 layers, vocab 3072): it rarely emits EOS, so every completion runs to the cap on both
    sides. ``--model DIR`` or an available ``embedded:tiny`` replaces it.
  * prompts: TRL's dataset is drawn from the prompts our step builds (propose prompts with K buffer
    references and solve prompts, round-robin over the 6 (role, type) groups), from the same buffer.
  * completions trained per optimiser step: ours 6 groups x B; TRL per_device_train_batch_size x
    gradient_accumulation_steps = 6 x B with num_generations copies per prompt; the same micro-batch
    size for the loss; one optimiser step per training step, no old-log-prob pass on either side.
  * KV cache: the config's ``generation.cache_implementation`` (tiny.yaml: static) on both sides.
  * sampling: temperature 1, top-p 1, top-k off, max completion length ``--max-new-tokens`` for every
    role (ours: both max_new_tokens_propose and _solve); ours also stops at "</answer>".
  * optimiser: AdamW with the config's lr / betas / weight decay, grad clip, constant schedule, no KL.
  * reward (``--reward sandbox``, the default): TRL's reward parses each reply with our parsers and
    checks it through our Sandbox (proposals validated, answers checked, one batched call each), so
    it does the same sandbox work as our step except the learnability rollouts, which only exist for
    valid proposals (a random model makes none). ``--reward trivial`` gives TRL a constant reward.

Ours may generate more than it trains (learnability rollouts); both counts are printed. Not a test:
it prints figures, and the machine's load next to them.
"""

from __future__ import annotations

import argparse
import cProfile
import itertools
import os
import pstats
import statistics
import sys
import tempfile
import time
import warnings
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# Decided before torch loads libgomp. With its default (spinning) wait policy, generation on a machine
# where other processes compete for the cores ran 4-25x slower and erratically (every parallel region
# waits for a descheduled thread); passive waiting is steady there but about 2x slower on an idle
# machine. So: passive only when something else is running; OMP_WAIT_POLICY in the environment wins.
OMP_AUTO = "OMP_WAIT_POLICY" not in os.environ and os.getloadavg()[0] >= 1.0
if OMP_AUTO:
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"

import torch  # noqa: E402
from _bench_common import TinyShape, build_random_model, embedded_model_path, load_note  # noqa: E402

from azr import selfplay  # noqa: E402
from azr.components import Components, build_components  # noqa: E402
from azr.config import Config, load_config  # noqa: E402
from azr.tasks import ParseError, Task, candidate_from_reply, check_replies, get_task_type, validate  # noqa: E402
from azr.tasks.checking import CheckConfig  # noqa: E402

GROUPS = [(role, t) for role in ("propose", "solve") for t in ("deduction", "abduction", "induction")]


@dataclass
class StepTiming:
    """One measured training step of one side."""

    wall_s: float
    generated_tokens: int
    trained_tokens: int
    trained_sequences: int
    split: dict[str, float] = field(default_factory=dict)


@dataclass
class SideResult:
    name: str
    steps: list[StepTiming]

    def total(self, attr: str) -> float:
        return sum(getattr(s, attr) for s in self.steps)

    def rate(self, attr: str = "generated_tokens") -> float:
        return self.total(attr) / max(self.total("wall_s"), 1e-9)

    def split(self) -> dict[str, float]:
        out: dict[str, float] = defaultdict(float)
        for s in self.steps:
            for k, v in s.split.items():
                out[k] += v / len(self.steps)
        return dict(out)


@dataclass
class PoolItem:
    """A prompt of the shared pool and what the TRL reward needs to score a reply to it."""

    role: str
    task_type: str
    prompt: str
    references: list[Task] = field(default_factory=list)
    task: Task | None = None


# ---- setup ------------------------------------------------------------------------------------------


def make_config(args: argparse.Namespace, model_dir: str, out_dir: Path, seed_file: Path | None) -> Config:
    overrides = [
        f"model.name_or_path={model_dir}", "model.dtype=float32",
        f"trainer.output_dir={out_dir}", "trainer.resume=never", "trainer.report_to=[none]",
        f"trainer.max_steps={args.warmup + args.steps}", "trainer.save_every=0", f"trainer.seed={args.seed}",
        f"rl.batch_per_type_role={args.batch}", f"rl.learnability_rollouts={args.rollouts}",
        f"rl.micro_batch_size={args.micro_batch}", "rl.kl_coef=0.0", "rl.ppo_epochs=1", "rl.lr_schedule=constant",
        "rl.warmup_steps=0",
        f"generation.max_new_tokens_propose={args.max_new_tokens}",
        f"generation.max_new_tokens_solve={args.max_new_tokens}",
        f"generation.batch_size={args.gen_batch or 6 * args.batch}", "generation.temperature=1.0", "generation.top_p=1.0",
        "generation.top_k=0", f"sandbox.workers={args.workers}",
    ]
    if seed_file is not None:
        overrides.append(f"buffer.seed_file={seed_file}")
    return load_config(ROOT / "configs" / "tiny.yaml", overrides)


def write_seed_tasks(path: Path, rows: int) -> Path | None:
    """Realistic 6-12 line programs (scripts/bench_buffer.py templates), so prompts have realistic length."""
    if rows <= 0:
        return None
    from bench_buffer import write_seed_file

    write_seed_file(path, rows)
    return path


def prompt_pool(c: Components, per_step: int, steps: int) -> list[PoolItem]:
    """``per_step`` prompts for each step, round-robin over the 6 (role, type) groups, built exactly as
    the step builds them (same references, wrapper, style and prompt-length limit)."""
    cfg, pool = c.cfg, []
    groups = itertools.cycle(GROUPS)
    while len(pool) < per_step * steps:
        role, t = next(groups)
        for _attempt in range(20):
            if role == "propose":
                refs = selfplay.sample_references(c, t, cfg.tasks.references)
                if refs is None:
                    break
                text = selfplay.wrap_prompt(c, get_task_type(t).propose_prompt(refs, cfg.tasks.prompt_style))
                item = PoolItem(role, t, text, references=refs)
            else:
                tasks = c.buffer.sample(t, 1, c.rng, replace=True)
                if not tasks:
                    break
                item = PoolItem(role, t, selfplay.solve_prompt(c, tasks[0]), task=tasks[0])
            if len(c.generator.encode(item.prompt)) <= cfg.generation.max_prompt_tokens:
                pool.append(item)
                break
    return pool


# ---- our side ---------------------------------------------------------------------------------------


class OursRunner:
    """Runs and times our steps one at a time, so they can be interleaved with TRL's."""

    def __init__(self, c: Components, args: argparse.Namespace) -> None:
        self.c, self.args, self.steps = c, args, []
        self.profiler = cProfile.Profile() if args.profile else None
        self._trained: dict[str, int] = {}

    def step(self, step: int) -> None:
        original = selfplay.ppo_update

        def counting_update(comp: Components, samples: list, advantages: torch.Tensor) -> dict[str, float]:
            self._trained.update(tokens=sum(len(s.completion_ids) for s in samples), sequences=len(samples))
            return original(comp, samples, advantages)

        selfplay.ppo_update = counting_update  # count what the step trains, without touching azr/
        measured = step > self.args.warmup
        try:
            if self.profiler and measured:
                self.profiler.enable()
            t0 = time.perf_counter()
            log = selfplay.selfplay_step(self.c, step)
            wall = time.perf_counter() - t0
            if self.profiler and measured:
                self.profiler.disable()
        finally:
            selfplay.ppo_update = original
        m = log.metrics
        split = {"generation": m["time/generation_s"], "sandbox": m["time/sandbox_s"], "update": m["time/update_s"]}
        split["other"] = wall - sum(split.values())
        timing = StepTiming(wall, int(m["throughput/generated_tokens"]), self._trained.get("tokens", 0),
                            self._trained.get("sequences", 0), split)
        print(f"  ours step {step}{'' if measured else ' (warm-up)'}: {wall:.2f} s, "
              f"{timing.generated_tokens} tokens generated, {timing.trained_sequences} sequences trained")
        if measured:
            self.steps.append(timing)

    def result(self) -> SideResult:
        if self.profiler:
            self.profiler.dump_stats(self.args.profile)
            print(f"  cProfile of our measured steps written to {self.args.profile}; top by cumulative time:")
            pstats.Stats(self.profiler).sort_stats("cumulative").print_stats(25)
        return SideResult("ours", self.steps)


# ---- TRL side ---------------------------------------------------------------------------------------


def trl_batch_shape(total: int, micro: int, generations: int) -> tuple[int, int]:
    """(per_device_train_batch_size, gradient_accumulation_steps) with product ``total`` and the
    largest micro-batch <= ``micro``; ``total`` must hold whole groups of ``generations``."""
    if total % generations:
        raise SystemExit(f"--num-generations {generations} must divide the {total} completions per step (6 x B)")
    per_device = max(d for d in range(1, min(micro, total) + 1) if total % d == 0)
    return per_device, total // per_device


class _Recorder:
    """Collects TRL's own profiling timers (normally sent only to wandb/mlflow) and token counts."""

    def __init__(self) -> None:
        self.timers: dict[str, float] = defaultdict(float)
        self.tokens = 0
        self.sequences = 0

    def reset(self) -> tuple[dict[str, float], int, int]:
        out = (dict(self.timers), self.tokens, self.sequences)
        self.timers, self.tokens, self.sequences = defaultdict(float), 0, 0
        return out


def make_reward(pool: list[PoolItem], c: Components, recorder: _Recorder, kind: str) -> Any:
    """TRL reward with the same sandbox work as our step (or a constant, for ``kind == 'trivial'``)."""
    scheme = c.cfg.rl.rewards
    vcfg = selfplay.validation_config(c.cfg)
    ccfg = CheckConfig(timeout_s=c.cfg.sandbox.timeout_s)

    def azr_reward(prompts: list, completions: list[str], completion_ids: list[list[int]], key: list[int],
                   **_: Any) -> list[float]:
        recorder.tokens += sum(len(ids) for ids in completion_ids)
        recorder.sequences += len(completion_ids)
        if kind == "trivial":
            return [0.0] * len(completions)
        items = [pool[k] for k in key]
        rewards = [0.0] * len(items)
        proposals = [(i, candidate_from_reply(it.task_type, text, it.references, 0))
                     for i, (it, text) in enumerate(zip(items, completions)) if it.role == "propose"]
        to_validate = [(i, cand) for i, cand in proposals if isinstance(cand, Task)]
        outcomes = validate(c.sandbox, [cand for _, cand in to_validate], vcfg) if to_validate else []
        for i, cand in proposals:
            if isinstance(cand, ParseError):
                rewards[i] = scheme.proposer("format_error")
        for (i, _), outcome in zip(to_validate, outcomes):
            # valid: no learnability rollouts on this side, so score it like an extreme solve rate
            rewards[i] = scheme.extreme_solve_rate_reward if outcome.ok else scheme.proposer("invalid")
        solves = [(i, it.task, text) for i, (it, text) in enumerate(zip(items, completions)) if it.role == "solve"]
        verdicts = check_replies(c.sandbox, [(task, text) for _, task, text in solves], ccfg) if solves else []
        for (i, _, _), v in zip(solves, verdicts):
            rewards[i] = scheme.solver("correct" if v.correct else ("wrong" if v.well_formatted else "format_error"))
        return rewards

    return azr_reward


def run_trl(model_dir: str, c: Components, pool: list[PoolItem], args: argparse.Namespace, out_dir: Path,
            after_step: Callable[[int], None] | None = None) -> tuple[SideResult, str]:
    """Train with GRPOTrainer; ``after_step(k)`` runs after TRL's step k, outside TRL's timing (this is
    how our steps are interleaved with TRL's, so that load changes on a shared machine hit both)."""
    import transformers
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, PrinterCallback, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer
    from trl.extras import profiling

    transformers.logging.set_verbosity_error()
    warnings.filterwarnings("ignore", category=FutureWarning)  # deprecation notices from inside TRL
    cfg = c.cfg
    total = 6 * cfg.rl.batch_per_type_role
    per_device, accum = trl_batch_shape(total, cfg.rl.micro_batch_size, args.num_generations)
    recorder = _Recorder()

    def record(self: Any, duration: float) -> None:
        recorder.timers[self.name.split(".", 1)[-1]] += duration

    profiling.ProfilingContext._log_metrics = record  # type: ignore[method-assign]
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    grpo = GRPOConfig(
        output_dir=str(out_dir), report_to="none", save_strategy="no", logging_steps=1, disable_tqdm=True,
        use_cpu=True, bf16=False, fp16=False, activation_checkpointing=False, seed=args.seed,
        max_steps=args.warmup + args.steps, per_device_train_batch_size=per_device,
        gradient_accumulation_steps=accum, num_generations=args.num_generations,
        max_completion_length=args.max_new_tokens, temperature=1.0, top_p=1.0, top_k=0,
        learning_rate=cfg.rl.lr, weight_decay=cfg.rl.weight_decay, adam_beta1=cfg.rl.adam_beta1,
        adam_beta2=cfg.rl.adam_beta2, max_grad_norm=cfg.rl.grad_clip or 0.0, lr_scheduler_type="constant",
        warmup_steps=0, beta=0.0, epsilon=cfg.rl.clip_eps, loss_type="dapo", num_iterations=1,
        shuffle_dataset=False, use_vllm=False, log_completions=False, dataloader_num_workers=0,
        cache_implementation=cfg.generation.cache_implementation or None,  # the same KV cache as ours
    )
    data = Dataset.from_dict({"prompt": [p.prompt for p in pool], "key": list(range(len(pool)))})
    steps: list[StepTiming] = []

    class Timer(TrainerCallback):
        last = 0.0

        def on_step_begin(self, a: Any, state: Any, control: Any, **kw: Any) -> None:
            if state.global_step == 0:
                self.last = time.perf_counter()
                recorder.reset()

        def on_step_end(self, a: Any, state: Any, control: Any, **kw: Any) -> None:
            wall = time.perf_counter() - self.last
            timers, tokens, sequences = recorder.reset()
            gen = timers.get("transformers.generate", 0.0)
            reward = timers.get("_calculate_rewards", 0.0)
            split = {"generation": gen, "reward": reward,
                     "other prep": timers.get("_prepare_inputs", 0.0) - gen - reward}
            split["loss+update"] = wall - sum(split.values())
            measured = state.global_step > args.warmup
            print(f"  TRL step {state.global_step}{' (warm-up)' if not measured else ''}: {wall:.2f} s, "
                  f"{tokens} tokens generated, {sequences} sequences trained")
            if measured:
                steps.append(StepTiming(wall, tokens, tokens, sequences, split))
            if after_step is not None:
                after_step(state.global_step)
            self.last = time.perf_counter()
            recorder.reset()

    trainer = GRPOTrainer(model=model, reward_funcs=[make_reward(pool, c, recorder, args.reward)], args=grpo,
                          train_dataset=data, processing_class=tokenizer, callbacks=[Timer()])
    trainer.remove_callback(PrinterCallback)  # its per-step log dicts would bury the figures
    trainer.train()
    shape = (f"per_device_train_batch_size {per_device} x gradient_accumulation_steps {accum}, "
             f"num_generations {args.num_generations} ({total // args.num_generations} prompts per step)")
    return SideResult("TRL", steps), shape


# ---- report -----------------------------------------------------------------------------------------


def report(ours: SideResult | None, trl: SideResult | None) -> None:
    print()
    print(f"{'':6}{'gen tok/s':>10}{'trained tok/s':>15}{'s/step':>9}{'gen tok/step':>14}{'seqs/step':>11}")
    for side in (s for s in (ours, trl) if s and s.steps):
        n = len(side.steps)
        print(f"{side.name:6}{side.rate():>10.1f}{side.rate('trained_tokens'):>15.1f}"
              f"{side.total('wall_s') / n:>9.2f}{side.total('generated_tokens') / n:>14.0f}"
              f"{side.total('trained_sequences') / n:>11.1f}")
    if ours and trl and ours.steps and trl.steps:
        ratio = ours.rate() / max(trl.rate(), 1e-9)
        verdict = "meets" if round(ratio, 2) >= 1.3 else "below"
        print(f"ratio ours/TRL (generated completion tokens per wall second): {ratio:.2f}x ({verdict} the 1.3x target)")
        pairs = [(o.generated_tokens / o.wall_s) / (t.generated_tokens / t.wall_s)
                 for o, t in zip(ours.steps, trl.steps)]
        print(f"per interleaved step pair: median {statistics.median(pairs):.2f}x, "
              f"range {min(pairs):.2f}-{max(pairs):.2f}x")
    for side in (s for s in (ours, trl) if s and s.steps):
        split = side.split()
        step_s = side.total("wall_s") / len(side.steps)
        parts = ", ".join(f"{k} {v:.2f} s ({100 * v / step_s:.0f}%)" for k, v in split.items())
        print(f"{side.name} time per step: {parts}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5, help="measured steps per side")
    parser.add_argument("--warmup", type=int, default=1, help="unmeasured steps first, per side")
    parser.add_argument("--batch", type=int, default=4, help="B: samples per (type, role) group; 6 x B trained")
    parser.add_argument("--max-new-tokens", type=int, default=128, help="max completion length, every role")
    parser.add_argument("--rollouts", type=int, default=4, help="ours: learnability rollouts per valid proposal")
    parser.add_argument("--num-generations", type=int, default=2, help="TRL: completions per prompt")
    parser.add_argument("--micro-batch", type=int, default=8, help="sequences per forward/backward, both sides")
    parser.add_argument("--gen-batch", type=int, default=0,
                        help="ours: sequences per generate call (0: TRL's generation batch, 6 x B, as TRL uses)")
    parser.add_argument("--workers", type=int, default=2, help="sandbox workers")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument("--seed-rows", type=int, default=60, help="realistic seed rows for the buffer (0: identity)")
    parser.add_argument("--reward", choices=["sandbox", "trivial"], default="sandbox", help="TRL's reward")
    parser.add_argument("--model", default="", help="HF model dir (default: embedded:tiny if built, else random)")
    parser.add_argument("--random", action="store_true", help="use the random model even if embedded:tiny exists")
    parser.add_argument("--hidden", type=int, default=TinyShape.hidden)
    parser.add_argument("--layers", type=int, default=TinyShape.layers)
    parser.add_argument("--intermediate", type=int, default=TinyShape.intermediate)
    parser.add_argument("--vocab", type=int, default=TinyShape.vocab)
    parser.add_argument("--only", choices=["both", "ours", "trl"], default="both")
    parser.add_argument("--profile", default="", help="write a cProfile of our measured steps to this file")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()

    with tempfile.TemporaryDirectory(prefix="bench_step_") as tmp_name:
        tmp = Path(tmp_name)
        model_dir = args.model or (None if args.random else embedded_model_path())
        if not model_dir:
            shape = TinyShape(hidden=args.hidden, layers=args.layers, intermediate=args.intermediate,
                              vocab=args.vocab, heads=max(1, args.hidden // 48), kv_heads=max(1, args.hidden // 96))
            model_dir = str(build_random_model(tmp / "model", shape, seed=args.seed))
            source = f"random Qwen2 {shape}"
        else:
            source = model_dir
        seed_file = write_seed_tasks(tmp / "seeds.jsonl", args.seed_rows)
        cfg = make_config(args, model_dir, tmp / "ours", seed_file)
        c = build_components(cfg)
        try:
            params = sum(p.numel() for p in c.model.parameters())
            print(f"model: {source}: {params / 1e6:.2f} M parameters, vocab {len(c.tokenizer)}; float32 CPU, "
                  f"{torch.get_num_threads()} threads, OMP_WAIT_POLICY="
                  f"{os.environ.get('OMP_WAIT_POLICY', 'unset (spinning)')}"
                  f"{' (set because the machine was busy at start)' if OMP_AUTO else ''}")
            print(f"machine: {load_note()} (before)")
            total = 6 * args.batch
            pool = prompt_pool(c, total // args.num_generations, args.warmup + args.steps)
            lengths = [len(c.generator.encode(p.prompt)) for p in pool]
            print(f"per step: {total} trained completions, max {args.max_new_tokens} new tokens each, T=1.0; "
                  f"prompts {min(lengths)}-{max(lengths)} tokens (mean {sum(lengths) / len(lengths):.0f}); "
                  f"TRL reward: {args.reward}; {args.warmup} warm-up + {args.steps} measured steps per side")
            runner = OursRunner(c, args) if args.only in ("both", "ours") else None
            trl = None
            if args.only == "ours":
                for step in range(1, args.warmup + args.steps + 1):
                    runner.step(step)
            else:  # TRL step k, then our step k: a load change on the shared machine hits both sides
                trl, shape_note = run_trl(model_dir, c, pool, args, tmp / "trl",
                                          after_step=runner.step if runner else None)
                print(f"  TRL batch: {shape_note}")
            report(runner.result() if runner else None, trl)
        finally:
            c.close()
    print(f"machine: {load_note()} (after); total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
