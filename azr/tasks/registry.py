"""The task-type registry: each type bundles its prompts, parsers, validator and checker.

The trainer, buffer and rewards only ever call through a :class:`TaskType`, so a new kind of task
(say, error-type prediction) is one ``register_task_type`` call away. The three Absolute Zero
types (deduction, abduction, induction) are registered from :mod:`azr.tasks.absolute_zero` the
first time the registry is used.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from azr.tasks.errors import ParseError
from azr.tasks.record import Task

if TYPE_CHECKING:
    from azr.tasks.checking import CheckConfig, Verdict
    from azr.tasks.parsing import Answer, Proposal
    from azr.tasks.plans import Plan
    from azr.tasks.validation import ValidationConfig, ValidationOutcome


@dataclass(frozen=True)
class TaskType:
    """Everything the self-play loop needs to know about one kind of task.

    - ``propose_prompt(references, style)``: prompt asking for a new task, given K buffer tasks.
    - ``solve_prompt(task, style)``: prompt showing a task to the solver.
    - ``parse_proposal(reply)`` / ``parse_answer(reply)``: any object in, parsed result or
      :class:`ParseError` out; never raise.
    - ``make_candidate(proposal, references, step)``: the unvalidated :class:`Task`.
    - ``validation_plan(candidate, config)`` / ``check_plan(task, answer, config)``: the sandbox
      jobs and the judgement, batched by :func:`azr.tasks.validation.validate` and
      :func:`azr.tasks.checking.check_answers`.
    """

    name: str
    propose_prompt: Callable[[Sequence[Task], str], str]
    solve_prompt: Callable[[Task, str], str]
    parse_proposal: Callable[[object], Proposal | ParseError]
    parse_answer: Callable[[object], Answer | ParseError]
    make_candidate: Callable[[Proposal, Sequence[Task], int], Task]
    validation_plan: Callable[[Task, ValidationConfig], Plan[ValidationOutcome]]
    check_plan: Callable[[Task, Answer, CheckConfig], Plan[Verdict]]


_REGISTRY: dict[str, TaskType] = {}
_builtins_loaded = False


def register_task_type(task_type: TaskType, replace: bool = False) -> None:
    """Add a task type; ``replace=True`` swaps an existing one (e.g. induction with other N)."""
    _load_builtins()
    if task_type.name in _REGISTRY and not replace:
        raise ValueError(f"task type {task_type.name!r} is already registered (pass replace=True to swap it)")
    _REGISTRY[task_type.name] = task_type


def get_task_type(name: str) -> TaskType:
    """The registered task type called ``name``."""
    _load_builtins()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown task type {name!r}; registered: {sorted(_REGISTRY)}") from None


def task_type_names() -> list[str]:
    _load_builtins()
    return list(_REGISTRY)


def _load_builtins() -> None:
    global _builtins_loaded
    if _builtins_loaded:
        return
    _builtins_loaded = True
    from azr.tasks.absolute_zero import builtin_task_types

    for task_type in builtin_task_types():
        _REGISTRY.setdefault(task_type.name, task_type)
