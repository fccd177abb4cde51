"""Validating proposed tasks: static checks, then two sandbox runs with different seeds.

A candidate is a :class:`~azr.tasks.record.Task` whose ``outputs`` are unknown. It is accepted when
its program parses, defines ``f``, imports nothing on the deny list, uses no escape-hatch builtin,
its inputs are plain argument lists, and running it under two different sandbox seeds (which
reseed ``random`` and perturb the heap, so ``id()``/object-set order change) gives the same
plain-data outputs within the time, memory and size limits. Unlike the official code, the
determinism check can reject, failures are structured statuses rather than substring matches,
and too-large outputs are rejected, never truncated.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from azr.tasks.analysis import (
    DEFAULT_BANNED_MODULES,
    DEFAULT_BANNED_NAMES,
    banned_imports,
    banned_names,
    complexity,
    defines_f,
    import_statements,
    parse_program,
)
from azr.tasks.arguments import Arguments, parse_arguments
from azr.tasks.errors import ParseError, Rejection
from azr.tasks.plans import Plan, decided, run_plans
from azr.tasks.record import Complexity, Task, ValidationTrace
from sandbox import Job, Result, Sandbox
from sandbox.values import OPAQUE_PREFIX, Value

_TOO_LARGE = OPAQUE_PREFIX + "too-large>"


@dataclass(frozen=True)
class ValidationConfig:
    """What a proposed task must satisfy to enter the buffer."""

    timeout_s: float = 5.0  # wall-clock limit per sandbox run (program + all calls)
    seeds: tuple[int, int] = (0, 1)  # the two runs must agree; different seeds expose nondeterminism
    check_determinism: bool = True
    banned_modules: frozenset[str] = DEFAULT_BANNED_MODULES  # any dotted component matching rejects
    allowed_modules: frozenset[str] | None = None  # if set, also reject every other top-level module
    banned_names: frozenset[str] = DEFAULT_BANNED_NAMES  # escape-hatch builtins and attributes
    max_program_chars: int = 4000
    max_input_chars: int = 1000  # canonical argument-list text, per input
    max_output_chars: int = 1000  # canonical output text; larger outputs are rejected
    max_message_chars: int = 1000
    allow_none_output: bool = False  # the paper asks f to return something
    reject_constant_outputs: bool = True  # induction: one output for every input teaches nothing

    def __post_init__(self) -> None:
        if self.timeout_s <= 0:
            raise ValueError(f"ValidationConfig.timeout_s must be > 0, got {self.timeout_s}")
        if len(self.seeds) != 2 or self.seeds[0] == self.seeds[1]:
            raise ValueError(f"ValidationConfig.seeds must be two different ints, got {self.seeds}")
        for name in ("max_program_chars", "max_input_chars", "max_output_chars", "max_message_chars"):
            if getattr(self, name) < 1:
                raise ValueError(f"ValidationConfig.{name} must be >= 1")


@dataclass
class ValidationOutcome:
    """A validated task (outputs, complexity and trace filled in) or a rejection with its reason."""

    task: Task
    rejection: Rejection | None = None
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.rejection is None


def validate(
    sb: Sandbox, candidates: Sequence[Task], config: ValidationConfig | None = None
) -> list[ValidationOutcome]:
    """Validate a batch of candidates with a single ``evaluate_many`` call; outcomes in input order."""
    from azr.tasks.registry import get_task_type

    config = config or ValidationConfig()
    plans = [get_task_type(c.type).validation_plan(c, config) for c in candidates]
    return run_plans(sb, plans)


def candidate_from_reply(
    type_name: str, reply: object, references: Sequence[Task], step: int = 0
) -> Task | ParseError:
    """Parse a proposer's reply with its task type and build the (unvalidated) candidate Task.

    ``references`` are the buffer tasks shown in the propose prompt (for induction, the first one
    supplies the program).
    """
    from azr.tasks.registry import get_task_type

    task_type = get_task_type(type_name)
    proposal = task_type.parse_proposal(reply)
    if isinstance(proposal, ParseError):
        return proposal
    return task_type.make_candidate(proposal, references, step)


# ---------------------------------------------------------------------------------------------
# The plan shared by the program + inputs task types


@dataclass
class _Run:
    """Bookkeeping for one candidate while it is being validated."""

    task: Task
    started: float = field(default_factory=time.perf_counter)

    def check(self, name: str) -> None:
        self.task.validation.checks.append(name)

    def reject(self, reason: Rejection, detail: str) -> ValidationOutcome:
        detail = detail if len(detail) <= 500 else detail[:500] + "..."
        self.task.validation.rejection = reason.value
        self.task.validation.detail = detail
        elapsed = time.perf_counter() - self.started
        self.task.validation.timings_s.setdefault("static", elapsed)
        self.task.validation.timings_s["total"] = elapsed
        return ValidationOutcome(self.task, reason, detail)


def fresh_candidate(candidate: Task) -> Task:
    """A copy of the candidate with everything validation computes cleared (never mutate input)."""
    return dataclasses.replace(
        candidate,
        inputs=list(candidate.inputs),
        outputs=[],
        imports=[],
        references=list(candidate.references),
        validation=ValidationTrace(),
        complexity=Complexity(),
    )


def program_io_plan(
    candidate: Task, config: ValidationConfig, n_inputs: int, n_shown: int = 1, check_message: bool = False
) -> Plan[ValidationOutcome]:
    """Static checks now; if they pass, two sandbox runs whose results decide the outcome.

    ``n_inputs`` is how many inputs the task type needs, ``n_shown`` how many of them the solver
    sees (the rest are held out); ``check_message`` requires a usable induction message.
    """
    run = _Run(fresh_candidate(candidate))
    task = run.task
    task.n_shown = n_shown
    checked = _static_checks(run, config, n_inputs, check_message)
    if isinstance(checked, ValidationOutcome):
        return decided(checked)
    calls = [a.call() for a in checked]
    task.validation.timings_s["static"] = time.perf_counter() - run.started
    jobs = [Job(task.program, calls, seed=config.seeds[0], timeout_s=config.timeout_s)]
    if config.check_determinism:
        # Reversed order, then the first call again: a global counter or cache that changes
        # answers between calls shows up even with a single input.
        jobs.append(
            Job(task.program, [*reversed(calls), calls[0]], seed=config.seeds[1], timeout_s=config.timeout_s)
        )
    return Plan(jobs=jobs, finish=lambda results: _judge(run, config, results, n_inputs))


def _static_checks(
    run: _Run, config: ValidationConfig, n_inputs: int, check_message: bool
) -> list[Arguments] | ValidationOutcome:
    """Everything decidable without running the program; returns the parsed inputs or a rejection."""
    task = run.task
    run.check("program_size")
    if not isinstance(task.program, str) or len(task.program) > config.max_program_chars:
        size = len(task.program) if isinstance(task.program, str) else 0
        return run.reject(
            Rejection.PROGRAM_TOO_LONG, f"program has {size} characters (limit {config.max_program_chars})"
        )
    run.check("syntax")
    tree = parse_program(task.program)
    if isinstance(tree, str):
        return run.reject(Rejection.SYNTAX_ERROR, tree)
    task.complexity = complexity(tree, task.program)
    task.imports = import_statements(tree)
    run.check("defines_f")
    if not defines_f(tree):
        return run.reject(Rejection.NO_F, "the program does not define a top-level function f")
    run.check("imports")
    found = banned_imports(tree, config.banned_modules, config.allowed_modules)
    if found:
        return run.reject(Rejection.BANNED_IMPORT, "banned import: " + ", ".join(map(str, found)))
    run.check("escape_hatches")
    hatches = banned_names(tree, config.banned_names)
    if hatches:
        return run.reject(Rejection.BANNED_CALL, "banned name: " + ", ".join(map(str, hatches)))
    run.check("inputs")
    if len(task.inputs) != n_inputs:
        return run.reject(Rejection.WRONG_INPUT_COUNT, f"{len(task.inputs)} inputs, {n_inputs} required")
    arguments: list[Arguments] = []
    for i, text in enumerate(task.inputs):
        parsed = parse_arguments(text, config.max_input_chars)
        if isinstance(parsed, ParseError):
            return run.reject(Rejection.BAD_INPUT, f"input {i + 1}: {parsed}")
        if len(parsed.text) > config.max_input_chars:
            return run.reject(
                Rejection.BAD_INPUT, f"input {i + 1} is longer than {config.max_input_chars} characters"
            )
        arguments.append(parsed)
    task.inputs = [a.text for a in arguments]
    if len(set(task.inputs)) != len(task.inputs):
        return run.reject(Rejection.DUPLICATE_INPUTS, "two inputs are the same argument list")
    if check_message:
        run.check("message")
        message = task.message.strip() if isinstance(task.message, str) else ""
        if not message:
            return run.reject(Rejection.BAD_MESSAGE, "the message is empty")
        if len(message) > config.max_message_chars:
            return run.reject(
                Rejection.BAD_MESSAGE, f"message longer than {config.max_message_chars} characters"
            )
        if "def f" in message or task.program.strip() in message:
            return run.reject(Rejection.BAD_MESSAGE, "the message contains the program")
    return arguments


_STATUS_REJECTIONS = {"timeout": Rejection.TIMEOUT, "memory": Rejection.MEMORY, "killed": Rejection.KILLED}


def _judge(run: _Run, config: ValidationConfig, results: list[Result], n_inputs: int) -> ValidationOutcome:
    task = run.task
    for name, result in zip(("run_seed_a", "run_seed_b"), results):
        task.validation.timings_s[name] = result.duration_s
    run.check("execution")
    for result in results:  # resource failures first: they say the most about the program
        if result.status in _STATUS_REJECTIONS:
            return run.reject(_STATUS_REJECTIONS[result.status], result.error or result.status)
    first = results[0]
    if not first.ok:
        if len(results) > 1 and results[1].ok:
            return run.reject(
                Rejection.NONDETERMINISTIC, f"fails with seed {config.seeds[0]} only: {first.error}"
            )
        return run.reject(Rejection.RUNTIME_ERROR, first.error or "error")
    if len(first.values) != n_inputs:
        return run.reject(
            Rejection.RUNTIME_ERROR, f"sandbox returned {len(first.values)} values for {n_inputs} calls"
        )
    run.check("outputs")
    for i, value in enumerate(first.values):
        if _TOO_LARGE in value.text or len(value.text) > config.max_output_chars:
            return run.reject(
                Rejection.OUTPUT_TOO_LARGE, f"output {i + 1} is over {config.max_output_chars} characters"
            )
        if value.opaque:
            return run.reject(Rejection.OUTPUT_NOT_PLAIN, f"output {i + 1} is {value.text}, not plain data")
    if len(results) > 1:
        run.check("determinism")
        second = results[1]
        if not second.ok:
            return run.reject(
                Rejection.NONDETERMINISTIC, f"fails with seed {config.seeds[1]} only: {second.error}"
            )
        expected = [*reversed(first.values), first.values[0]]
        if second.values != expected:
            return run.reject(Rejection.NONDETERMINISTIC, _first_difference(expected, second.values))
    if not config.allow_none_output and all(v.text == "None" for v in first.values):
        return run.reject(Rejection.RETURNS_NONE, "f returns None")
    if config.reject_constant_outputs and n_inputs > 1 and len({v.text for v in first.values}) == 1:
        return run.reject(Rejection.CONSTANT_OUTPUTS, f"every input gives {first.values[0].text}")
    task.outputs = [v.text for v in first.values]
    task.validation.timings_s["total"] = time.perf_counter() - run.started
    return ValidationOutcome(task)


def _first_difference(expected: list[Value], got: list[Value]) -> str:
    if len(expected) != len(got):
        return f"second run returned {len(got)} values, expected {len(expected)}"
    for a, b in zip(expected, got):
        if a != b:
            return f"second run gave {b.text[:100]} where the first gave {a.text[:100]}"
    return "runs differ"
