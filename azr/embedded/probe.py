"""A quick measurement of what a model can do on held-out tasks, through the trainer's own path:
registry prompts wrapped as conversations, sampled with the HF generator, proposals validated and
answers checked in the sandbox with :mod:`azr.tasks`.

Propose roles report the fraction of valid proposals; solve roles the fraction of correct answers
(``solve/deduction_simple`` on one-step programs, the easy end of the distribution).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

from azr.embedded.heldout import heldout_tasks
from azr.generation import HFGenerator, SamplingParams
from azr.tasks import candidate_from_reply, check_replies, get_task_type, register_task_type, validate
from azr.tasks.absolute_zero import induction_type
from azr.tasks.errors import ParseError
from azr.tasks.prompts import conversation
from azr.tasks.record import TASK_TYPES, Task
from sandbox import Sandbox

PROBE_SEED = 7  # held-out tasks for the probe; the learning-measurement script uses its own seed


@dataclass
class ProbeResult:
    rates: dict[str, float] = field(default_factory=dict)  # "propose/deduction" -> valid fraction, ...
    samples: dict[str, int] = field(default_factory=dict)
    failures: dict[str, dict[str, int]] = field(default_factory=dict)  # role -> reason -> count
    example_replies: dict[str, str] = field(default_factory=dict)  # role -> first sampled reply
    seconds: float = 0.0


def probe(
    model: object,
    tokenizer: object,
    sandbox: Sandbox,
    n_per_role: int = 16,
    temperature: float = 1.0,
    max_new_tokens: tuple[int, int] = (256, 128),
    seed: int = 0,
    style: str = "compact",
    induction_shape: tuple[int, int] = (6, 3),
) -> ProbeResult:
    """Sample one reply per held-out prompt for each of the six roles and score them.

    ``max_new_tokens`` is (propose, solve), as in configs/tiny.yaml.
    Induction runs with ``induction_shape`` (inputs written, pairs shown; configs/tiny.yaml's
    default), registered for the duration of the call and restored afterwards.
    """
    previous = get_task_type("induction")
    register_task_type(induction_type(*induction_shape), replace=True)
    try:
        return _probe(model, tokenizer, sandbox, n_per_role, temperature, max_new_tokens, seed, style, induction_shape)
    finally:
        register_task_type(previous, replace=True)


def _probe(
    model: object,
    tokenizer: object,
    sandbox: Sandbox,
    n_per_role: int,
    temperature: float,
    max_new_tokens: tuple[int, int],
    seed: int,
    style: str,
    induction_shape: tuple[int, int],
) -> ProbeResult:
    start = time.perf_counter()
    n_inputs, n_shown = induction_shape
    tasks = heldout_tasks(sandbox, n_per_role, PROBE_SEED + seed, n_inputs=n_inputs, n_shown=n_shown)
    # One-step programs are few (a few dozen in the held-out split), hence the cap.
    n_simple = min(n_per_role, 24)
    simple = heldout_tasks(sandbox, n_simple, PROBE_SEED + seed, max_transforms=0, types=("deduction",))["deduction"]
    generator = HFGenerator(model, tokenizer, batch_size=n_per_role)
    propose_params, solve_params = (
        SamplingParams(max_new_tokens=n, temperature=temperature, stop=("</answer>",), seed=seed) for n in max_new_tokens
    )
    result = ProbeResult()
    for kind in TASK_TYPES:
        task_type = get_task_type(kind)
        pool = tasks[kind]
        # Propose: references are other held-out tasks of the same type (induction: the program).
        refs = [[pool[(i + 1) % len(pool)], pool[(i + 2) % len(pool)]] if kind != "induction" else [pool[i]]
                for i in range(len(pool))]
        prompts = [conversation(task_type.propose_prompt(r, style)) for r in refs]
        replies = [g[0].text for g in generator.generate(prompts, propose_params)]
        candidates = [candidate_from_reply(kind, reply, r) for reply, r in zip(replies, refs)]
        parsed = [c for c in candidates if not isinstance(c, ParseError)]
        outcomes = validate(sandbox, parsed) if parsed else []
        reasons = [c.code.value for c in candidates if isinstance(c, ParseError)]
        reasons += [o.rejection.value for o in outcomes if o.rejection is not None]
        _record(result, f"propose/{kind}", sum(o.ok for o in outcomes), len(candidates), reasons, replies)
        # Solve.
        solve_sets = {f"solve/{kind}": pool}
        if kind == "deduction":
            solve_sets["solve/deduction_simple"] = simple
        for role, solve_pool in solve_sets.items():
            prompts = [conversation(task_type.solve_prompt(t, style)) for t in solve_pool]
            replies = [g[0].text for g in generator.generate(prompts, solve_params)]
            verdicts = check_replies(sandbox, list(zip(solve_pool, replies)))
            reasons = [v.format_error.value if v.format_error else "wrong" for v in verdicts if not v.correct]
            _record(result, role, sum(v.correct for v in verdicts), len(verdicts), reasons, replies)
    result.seconds = time.perf_counter() - start
    return result


def _record(result: ProbeResult, role: str, good: int, total: int, reasons: list[str], replies: list[str]) -> None:
    result.rates[role] = good / max(1, total)
    result.samples[role] = total
    result.failures[role] = dict(Counter(reasons))
    result.example_replies[role] = replies[0] if replies else ""


def solve_rate(model: object, tokenizer: object, sandbox: Sandbox, tasks: list[Task], n_samples: int = 1,
               temperature: float = 1.0, max_new_tokens: int = 128, seed: int = 0, style: str = "compact") -> float:
    """Mean correctness over ``tasks`` x ``n_samples`` sampled answers (for before/after RL comparisons)."""
    generator = HFGenerator(model, tokenizer, batch_size=16)
    params = SamplingParams(max_new_tokens=max_new_tokens, temperature=temperature, n=n_samples,
                            stop=("</answer>",), seed=seed)
    prompts = [conversation(get_task_type(t.type).solve_prompt(t, style)) for t in tasks]
    items = [(t, g.text) for t, gens in zip(tasks, generator.generate(prompts, params)) for g in gens]
    verdicts = check_replies(sandbox, items)
    return sum(v.correct for v in verdicts) / max(1, len(verdicts))
