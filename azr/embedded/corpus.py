"""The warm-up corpus: grammar programs grounded in the sandbox, rendered as (prompt, reply) pairs
for all six roles with the trainer's own prompt renderers and reply formats.

Prompts are wrapped with :func:`azr.tasks.prompts.conversation` (the plain-text wrapper for base
models, ending in an open ``<think>``), so the target reply starts inside the think section. A
fraction of examples use the bare prompt with the full reply, so the model also copes with callers
that do not wrap.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from azr.embedded import replies
from azr.embedded.execute import Run, canonical_input, run_programs
from azr.embedded.grammar import Program, sample_input, sample_programs
from azr.embedded.sft import Example
from azr.tasks import prompts
from azr.tasks.absolute_zero import induction_type
from azr.tasks.record import Task
from azr.tasks.registry import TaskType, get_task_type
from sandbox import Sandbox

ROLES = (
    "propose_deduction",
    "propose_abduction",
    "propose_induction",
    "solve_deduction",
    "solve_abduction",
    "solve_induction",
)
THINK_OPEN = "<think>"


@dataclass(frozen=True)
class CorpusConfig:
    n_programs: int = 1000
    inputs_per_program: int = 14  # candidates drawn per program; failures and duplicates are dropped
    # Induction shapes (inputs written, pairs shown, weight): configs/tiny.yaml runs 6/3, the paper 10/5.
    induction_shapes: tuple[tuple[int, int, float], ...] = ((6, 3, 0.7), (10, 5, 0.3))
    max_references: int = 3  # propose prompts get 0..max_references reference tasks
    style: str = "compact"
    bare_prompt_fraction: float = 0.15
    max_transforms: int = 2
    # Extra solve examples on every one-step training program (there are only ~150): the cheap
    # way to make the warmed-up solver right some of the time, so RL starts with signal.
    simple_repeats: int = 8
    roles: tuple[str, ...] = ROLES


@dataclass(frozen=True)
class Grounded:
    """A program with the runs the sandbox confirmed (distinct inputs, short non-None outputs)."""

    program: Program
    runs: tuple[Run, ...]


def ground(
    sandbox: Sandbox, programs: Sequence[Program], seed: int, inputs_per_program: int
) -> list[Grounded]:
    """Draw candidate inputs for each program, run them in the sandbox, keep programs that work."""
    rng = random.Random(f"azr-embedded-inputs/{seed}")
    candidates = []
    for p in programs:
        seen: dict[str, None] = {}
        for _ in range(inputs_per_program):
            seen.setdefault(canonical_input(sample_input(rng, p)), None)
        candidates.append(list(seen))
    runs = run_programs(sandbox, programs, candidates, seed=seed)
    return [Grounded(p, tuple(r)) for p, r in zip(programs, runs) if r]


def io_task(kind: str, g: Grounded, run: Run) -> Task:
    """A deduction or abduction task from one run."""
    return Task(type=kind, program=g.program.source, inputs=[run.input], outputs=[run.output], source="seed")


def induction_task(g: Grounded, n_inputs: int, n_shown: int, rng: random.Random) -> Task | None:
    """An induction task, or None when the program has too few runs or a constant output."""
    if len(g.runs) < n_inputs:
        return None
    runs = rng.sample(list(g.runs), n_inputs)
    if len({r.output for r in runs}) < 2:
        return None
    return Task(
        type="induction",
        program=g.program.source,
        inputs=[r.input for r in runs],
        outputs=[r.output for r in runs],
        message=replies.message_for(g.program),
        n_shown=n_shown,
        source="seed",
    )


def _wrap(prompt: str, reply: str, bare: bool) -> tuple[str, str]:
    if bare:
        return prompt, reply
    wrapped = prompts.conversation(prompt)
    if wrapped.endswith(THINK_OPEN) and reply.startswith(THINK_OPEN):
        reply = reply[len(THINK_OPEN) :]
    return wrapped, reply


def role_example(
    role: str, g: Grounded, pool: Sequence[Grounded], cfg: CorpusConfig, rng: random.Random
) -> tuple[str, str] | None:
    """The bare (prompt, reply) of one role about program ``g``; None when ``g`` cannot serve it.

    Prompts come from the task-type registry, exactly as the trainer renders them.
    """
    run = rng.choice(g.runs)
    p = g.program
    kind = role.split("_", 1)[1]
    task_type = get_task_type(kind)
    if role in ("propose_deduction", "propose_abduction"):
        k = rng.randint(0, cfg.max_references)
        refs = [io_task(kind, r, rng.choice(r.runs)) for r in rng.sample(list(pool), k) if r is not g]
        return task_type.propose_prompt(refs, cfg.style), replies.propose_program(p, run.input)
    if role == "solve_deduction":
        prompt = task_type.solve_prompt(io_task(kind, g, run), cfg.style)
        return prompt, replies.solve_output(p, run.input, run.trace, run.output)
    if role == "solve_abduction":
        prompt = task_type.solve_prompt(io_task(kind, g, run), cfg.style)
        return prompt, replies.solve_input(p, run.input, run.output)
    shapes = cfg.induction_shapes
    n_inputs, n_shown, _ = rng.choices(shapes, weights=[w for _, _, w in shapes])[0]
    task = induction_task(g, n_inputs, n_shown, rng)
    if task is None:
        return None
    if role == "propose_induction":
        prompt = _induction_type(n_inputs, n_shown).propose_prompt([task], cfg.style)
        return prompt, replies.propose_inputs(p, task.inputs)
    if role == "solve_induction":
        return task_type.solve_prompt(task, cfg.style), replies.solve_program(p)
    raise ValueError(f"unknown role {role!r}; expected one of {ROLES}")


@lru_cache(maxsize=8)
def _induction_type(n_inputs: int, n_shown: int) -> TaskType:
    return induction_type(n_inputs, n_shown)


def build_examples(
    grounded: Sequence[Grounded], cfg: CorpusConfig, seed: int, simple: Sequence[Grounded] = ()
) -> list[Example]:
    """One example per (program, role) where the program can serve the role, plus
    ``cfg.simple_repeats`` extra solve examples per one-step program in ``simple``."""
    rng = random.Random(f"azr-embedded-corpus/{seed}")
    jobs = [(role, g) for g in grounded for role in cfg.roles]
    simple_roles = [r for r in ("solve_deduction", "solve_abduction") if r in cfg.roles]
    jobs += [(role, g) for g in simple for role in simple_roles for _ in range(cfg.simple_repeats)]
    out: list[Example] = []
    for role, g in jobs:
        pair = role_example(role, g, grounded, cfg, rng)
        if pair is None:
            continue
        prompt, reply = _wrap(*pair, bare=rng.random() < cfg.bare_prompt_fraction)
        out.append(Example(role=role, prompt=prompt, reply=reply))
    rng.shuffle(out)
    return out


def build_corpus(sandbox: Sandbox, cfg: CorpusConfig, seed: int) -> tuple[list[Grounded], list[Example]]:
    """Programs of the training split, grounded, and the examples rendered from them."""
    programs = sample_programs(cfg.n_programs, seed, split="train", max_transforms=cfg.max_transforms)
    grounded = ground(sandbox, programs, seed, cfg.inputs_per_program)
    simple: list[Grounded] = []
    if cfg.simple_repeats > 0:
        one_step = sample_programs(10_000, seed, split="train", max_transforms=0, allow_fewer=True)
        simple = ground(sandbox, one_step, seed + 1, cfg.inputs_per_program)
    return grounded, build_examples(grounded, cfg, seed, simple)
