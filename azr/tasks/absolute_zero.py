"""The three Absolute Zero code-reasoning task types, assembled from prompts, parsers and plans.

- deduction: program + input shown, predict the output (proposer writes program + input);
- abduction: program + output shown, find any input producing it (proposer writes program + input);
- induction: ``n_shown`` input/output pairs + message shown, write ``f``; the rest are held out
  (proposer is shown a buffer program and writes ``n_inputs`` inputs + a message).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

from azr.tasks import checking, parsing, prompts
from azr.tasks.parsing import Proposal
from azr.tasks.plans import Plan
from azr.tasks.record import Task
from azr.tasks.registry import TaskType
from azr.tasks.validation import ValidationConfig, ValidationOutcome, program_io_plan


def _reference_ids(references: Sequence[Task]) -> list[int]:
    return [r.id for r in references if r.id is not None]


def _program_candidate(type_name: str, proposal: Proposal, references: Sequence[Task], step: int) -> Task:
    return Task(
        type=type_name,
        program=proposal.program,
        inputs=[a.text for a in proposal.inputs],
        outputs=[],
        n_shown=1,
        source="proposer",
        step=step,
        references=_reference_ids(references),
    )


def _program_type(name: str, solver_sees: str, solve_prompt: Callable[[Task, str], str]) -> TaskType:
    return TaskType(
        name=name,
        propose_prompt=lambda refs, style="compact": prompts.propose_program_prompt(refs, solver_sees, style),
        solve_prompt=solve_prompt,
        parse_proposal=parsing.parse_program_proposal,
        parse_answer=parsing.parse_output_answer if name == "deduction" else parsing.parse_input_answer,
        make_candidate=partial(_program_candidate, name),
        validation_plan=lambda task, config: program_io_plan(task, config, n_inputs=1),
        check_plan=checking.output_check_plan if name == "deduction" else checking.input_check_plan,
    )


def deduction_type() -> TaskType:
    return _program_type("deduction", "input", prompts.solve_deduction_prompt)


def abduction_type() -> TaskType:
    return _program_type("abduction", "output", prompts.solve_abduction_prompt)


def induction_type(n_inputs: int = 10, n_shown: int = 5) -> TaskType:
    """Induction with ``n_inputs`` proposed inputs of which the first ``n_shown`` are shown."""
    if not 0 < n_shown < n_inputs:
        raise ValueError(
            f"induction needs 0 < n_shown < n_inputs, got n_shown={n_shown}, n_inputs={n_inputs}"
        )

    def make_candidate(proposal: Proposal, references: Sequence[Task], step: int) -> Task:
        if not references:
            raise ValueError("an induction candidate needs the reference task whose program it uses")
        source = references[0]
        return Task(
            type="induction",
            program=source.program,
            inputs=[a.text for a in proposal.inputs],
            outputs=[],
            message=proposal.message,
            n_shown=n_shown,
            source="proposer",
            step=step,
            references=_reference_ids(references[:1]),
        )

    def validation_plan(task: Task, config: ValidationConfig) -> Plan[ValidationOutcome]:
        return program_io_plan(task, config, n_inputs=n_inputs, n_shown=n_shown, check_message=True)

    return TaskType(
        name="induction",
        propose_prompt=lambda refs, style="compact": prompts.propose_induction_prompt(
            refs, n_inputs, n_shown, style
        ),
        solve_prompt=prompts.solve_induction_prompt,
        parse_proposal=lambda reply: parsing.parse_induction_proposal(reply, n_inputs),
        parse_answer=parsing.parse_program_answer,
        make_candidate=make_candidate,
        validation_plan=validation_plan,
        check_plan=checking.program_check_plan,
    )


def builtin_task_types() -> list[TaskType]:
    return [deduction_type(), abduction_type(), induction_type()]
