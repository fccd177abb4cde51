"""Target replies for the warm-up corpus, rendered with the real reply renderers of ``azr.tasks``.

Only the think sections are written here; they are short and templated: a trace of intermediate
values for deduction (the one kind of reasoning a tiny model can imitate usefully), the pipeline
description elsewhere.
"""

from __future__ import annotations

from collections.abc import Sequence

from azr.embedded.grammar import Program
from azr.tasks import prompts


def _kind(program: Program) -> str:
    noun = {"str": "a string", "list": "a list of ints", "int": "an int"}[program.arg_type]
    return noun + (" and an int k" if program.has_k else "")


def message_for(program: Program) -> str:
    """The induction message: what f does, in words, without code."""
    return f"Given {_kind(program)}, {program.description}."


def propose_program(program: Program, input_text: str) -> str:
    """Deduction/abduction proposal: a new program and one input for it."""
    think = f"A function of {_kind(program)} that will {program.description}. Test input: {input_text}."
    return prompts.program_proposal_reply(program.source, input_text, think=think)


def propose_inputs(program: Program, inputs: Sequence[str]) -> str:
    """Induction proposal: inputs covering the program's behaviour and a message describing it."""
    think = f"f takes {_kind(program)} and will {program.description}. I pick {len(inputs)} varied inputs."
    return prompts.induction_proposal_reply(inputs, message_for(program), think=think)


def solve_output(program: Program, input_text: str, trace: Sequence[str], output: str) -> str:
    """Deduction answer: the value after each step, then the return value (values only: copying and
    computing is what a tiny model can learn here; naming the steps in words only costs tokens)."""
    var = program.params.split(",")[0]
    steps = [f"{program.params} = {input_text}."]
    steps += [f"{var} = {value}." for value in trace]
    steps.append(f"return {output}.")
    return prompts.output_answer_reply(output, think=" ".join(steps))


def solve_input(program: Program, input_text: str, output: str) -> str:
    """Abduction answer: one input that gives the shown output."""
    think = f"I need f to return {output}. Try {program.params} = {input_text}."
    return prompts.input_answer_reply(input_text, think=think)


def solve_program(program: Program) -> str:
    """Induction answer: the program itself."""
    think = f"The outputs come from {_kind(program)}: {program.description}."
    return prompts.program_answer_reply(program.source, think=think)
