"""Checking solver answers against validated tasks, in batches, comparing canonical values.

Deduction answers are compared in the parent (canonical literal vs. gold output) without running
anything. Abduction answers run ``f(answer)`` with the task's program; induction answers run the
solver's program on every held-out input. All sandbox work of a batch is one ``evaluate_many``
call (identical jobs merged). Values come back as canonical text, so an object with an
always-true ``__eq__`` comes back opaque and equals nothing; answers are rebuilt from canonical
encodings, so ``0) or (1`` never reaches the sandbox (it is a ``bad_input`` format error).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from azr.tasks.arguments import parse_arguments, parse_value
from azr.tasks.errors import FormatError, ParseError
from azr.tasks.parsing import Answer
from azr.tasks.plans import Plan, decided, run_plans
from azr.tasks.record import Task
from sandbox import Job, Result, Sandbox
from sandbox.values import Value


@dataclass(frozen=True)
class CheckConfig:
    """How solver answers are run."""

    timeout_s: float = 5.0  # per sandbox run (abduction: one call; induction: all held-out calls)
    seed: int = 0  # the seed validation's first run used, so abduction sees the same program state

    def __post_init__(self) -> None:
        if self.timeout_s <= 0:
            raise ValueError(f"CheckConfig.timeout_s must be > 0, got {self.timeout_s}")


@dataclass(frozen=True)
class Verdict:
    """Whether one answer is correct; ``format_error`` is set when the reply did not parse."""

    correct: bool
    format_error: FormatError | None = None
    status: str = ""  # sandbox status of the check run; "" when no run was needed
    detail: str = ""

    @property
    def well_formatted(self) -> bool:
        return self.format_error is None


def check_answers(
    sb: Sandbox, items: Sequence[tuple[Task, Answer | ParseError]], config: CheckConfig | None = None
) -> list[Verdict]:
    """Verdicts for many (task, parsed answer) pairs with a single ``evaluate_many`` call."""
    from azr.tasks.registry import get_task_type

    config = config or CheckConfig()
    plans: list[Plan[Verdict]] = []
    for task, answer in items:
        if isinstance(answer, ParseError):
            plans.append(decided(Verdict(False, format_error=answer.code, detail=answer.detail)))
        else:
            plans.append(get_task_type(task.type).check_plan(task, answer, config))
    return run_plans(sb, plans)


def check_replies(
    sb: Sandbox, items: Sequence[tuple[Task, str]], config: CheckConfig | None = None
) -> list[Verdict]:
    """Parse raw solver replies with each task type's parser, then :func:`check_answers`."""
    from azr.tasks.registry import get_task_type

    return check_answers(
        sb, [(task, get_task_type(task.type).parse_answer(reply)) for task, reply in items], config
    )


# ---------------------------------------------------------------------------------------------
# Per-kind plans (used by the task types in azr.tasks.absolute_zero)


def output_check_plan(task: Task, answer: Answer, config: CheckConfig) -> Plan[Verdict]:
    """Deduction: the answer's canonical value equals the gold output; no sandbox run."""
    _expect(answer, "output")
    gold = _gold(task.outputs[0]) if task.outputs else None
    if gold is None:
        return decided(Verdict(False, detail="task has no valid gold output"))
    return decided(Verdict(answer.output == gold))


def input_check_plan(task: Task, answer: Answer, config: CheckConfig) -> Plan[Verdict]:
    """Abduction: ``f(answer)`` with the task's program returns the gold output (any such input counts)."""
    _expect(answer, "input")
    gold = _gold(task.outputs[0]) if task.outputs else None
    if gold is None or answer.arguments is None:
        return decided(Verdict(False, detail="task has no valid gold output"))
    job = Job(task.program, [answer.arguments.call()], seed=config.seed, timeout_s=config.timeout_s)
    return Plan(jobs=[job], finish=lambda results: _compare(results[0], [gold]))


def program_check_plan(task: Task, answer: Answer, config: CheckConfig) -> Plan[Verdict]:
    """Induction: the solver's program gives the gold output on every held-out input."""
    _expect(answer, "program")
    held_in = task.inputs[task.n_shown :]
    held_out = task.outputs[task.n_shown :]
    calls = [_call(text) for text in held_in]
    golds = [_gold(text) for text in held_out]
    if not calls or len(calls) != len(golds) or None in calls or None in golds:
        return decided(Verdict(False, detail="task has no valid held-out pairs"))
    job = Job(answer.program, calls, seed=config.seed, timeout_s=config.timeout_s)  # type: ignore[arg-type]
    return Plan(jobs=[job], finish=lambda results: _compare(results[0], golds))  # type: ignore[arg-type]


def _compare(result: Result, golds: list[Value]) -> Verdict:
    if not result.ok:
        return Verdict(False, status=result.status, detail=(result.error or result.status)[:300])
    if len(result.values) != len(golds):
        return Verdict(
            False, status=result.status, detail=f"{len(result.values)} values for {len(golds)} calls"
        )
    for got, gold in zip(result.values, golds):
        if got != gold:  # opaque values (e.g. an always-equal object) are never equal
            return Verdict(
                False, status=result.status, detail=f"got {got.text[:100]}, expected {gold.text[:100]}"
            )
    return Verdict(True, status=result.status)


def _expect(answer: Answer, kind: str) -> None:
    if answer.kind != kind:
        raise ValueError(f"this task type needs an answer of kind {kind!r}, got {answer.kind!r}")


@lru_cache(maxsize=4096)
def _gold(text: str) -> Value | None:
    """Canonical gold value of a stored output (re-canonicalized: stores may hold hand-written seeds)."""
    value = parse_value(text, max_chars=max(len(text), 1) + 1)
    return None if isinstance(value, ParseError) else value


@lru_cache(maxsize=4096)
def _call(text: str) -> str | None:
    """The sandbox expression for a stored argument list, rebuilt from canonical encodings."""
    parsed = parse_arguments(text, max_chars=max(len(text), 1) + 1)
    return None if isinstance(parsed, ParseError) else parsed.call()
