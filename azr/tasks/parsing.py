"""Turning hostile model replies into proposals and answers, or into a named format error.

Every function here accepts *any* object and either returns a parsed result or a
:class:`~azr.tasks.errors.ParseError`; nothing raises and nothing is executed. Literals go through
``sandbox.parse_literal`` and programs through ``ast.parse`` only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from azr.tasks.analysis import defines_f, parse_program
from azr.tasks.arguments import Arguments, parse_arguments, parse_value
from azr.tasks.errors import FormatError, ParseError
from azr.tasks.reply import Block, answer_section, fenced_blocks, last_block
from sandbox.values import Value


@dataclass(frozen=True)
class ParseLimits:
    """Size limits applied while parsing; anything larger is ``too_long``, never truncated."""

    max_reply_chars: int = 64_000
    max_program_chars: int = 10_000
    max_input_chars: int = 2_000
    max_output_chars: int = 2_000
    max_message_chars: int = 2_000


DEFAULT_LIMITS = ParseLimits()


@dataclass(frozen=True)
class Proposal:
    """What a proposer wrote: a program (empty for induction, whose program is given) and inputs."""

    program: str
    inputs: tuple[Arguments, ...]
    message: str = ""


@dataclass(frozen=True)
class Answer:
    """What a solver wrote: an output literal, an argument list, or a program defining ``f``."""

    kind: Literal["output", "input", "program"]
    output: Value | None = None
    arguments: Arguments | None = None
    program: str = ""


# ---------------------------------------------------------------------------------------------
# Proposals


def parse_program_proposal(reply: object, limits: ParseLimits = DEFAULT_LIMITS) -> Proposal | ParseError:
    """Deduction/abduction proposal: a ```python block defining ``f`` and one ```input block."""
    blocks = _blocks(reply, limits)
    if isinstance(blocks, ParseError):
        return blocks
    program = _program_text(blocks, None, limits)
    if isinstance(program, ParseError):
        return program
    block = last_block(blocks, "input", untagged=False)
    if block is None:
        return ParseError(FormatError.NO_INPUT_BLOCK, "no ```input block in the answer")
    arguments = parse_arguments(block.content, limits.max_input_chars)
    if isinstance(arguments, ParseError):
        return arguments
    return Proposal(program=program, inputs=(arguments,))


def parse_induction_proposal(
    reply: object, n_inputs: int = 10, limits: ParseLimits = DEFAULT_LIMITS
) -> Proposal | ParseError:
    """Induction proposal: ``n_inputs`` ```input blocks (the last ones win) and a ```message block."""
    blocks = _blocks(reply, limits)
    if isinstance(blocks, ParseError):
        return blocks
    input_blocks = [b for b in blocks if b.tag == "input"]
    if not input_blocks:
        return ParseError(FormatError.NO_INPUT_BLOCK, "no ```input block in the answer")
    if len(input_blocks) < n_inputs:
        return ParseError(
            FormatError.WRONG_INPUT_COUNT, f"{len(input_blocks)} ```input blocks, {n_inputs} required"
        )
    inputs = []
    for i, block in enumerate(input_blocks[-n_inputs:]):
        arguments = parse_arguments(block.content, limits.max_input_chars)
        if isinstance(arguments, ParseError):
            return ParseError(arguments.code, f"input {i + 1}: {arguments.detail}")
        inputs.append(arguments)
    message = last_block(blocks, "message", untagged=False)
    if message is None or not message.content.strip():
        return ParseError(FormatError.NO_MESSAGE_BLOCK, "no non-empty ```message block in the answer")
    text = message.content.strip()
    if len(text) > limits.max_message_chars:
        return ParseError(
            FormatError.TOO_LONG, f"message has {len(text)} characters (limit {limits.max_message_chars})"
        )
    return Proposal(program="", inputs=tuple(inputs), message=text)


# ---------------------------------------------------------------------------------------------
# Solver answers


def parse_output_answer(reply: object, limits: ParseLimits = DEFAULT_LIMITS) -> Answer | ParseError:
    """Deduction answer: the last ```output block (or untagged block, or bare answer) as a literal."""
    text = _answer_text(reply, "output", limits)
    if isinstance(text, ParseError):
        return text
    value = parse_value(text, limits.max_output_chars)
    if isinstance(value, ParseError):
        return value
    return Answer(kind="output", output=value)


def parse_input_answer(reply: object, limits: ParseLimits = DEFAULT_LIMITS) -> Answer | ParseError:
    """Abduction answer: the last ```input block (or untagged block, or bare answer) as arguments."""
    text = _answer_text(reply, "input", limits)
    if isinstance(text, ParseError):
        return text
    arguments = parse_arguments(text, limits.max_input_chars)
    if isinstance(arguments, ParseError):
        return arguments
    return Answer(kind="input", arguments=arguments)


def parse_program_answer(reply: object, limits: ParseLimits = DEFAULT_LIMITS) -> Answer | ParseError:
    """Induction answer: the last ```python block; it must parse and define a top-level ``f``."""
    section = answer_section(reply, limits.max_reply_chars)
    if isinstance(section, ParseError):
        return section
    program = _program_text(fenced_blocks(section), section, limits)
    if isinstance(program, ParseError):
        return program
    tree = parse_program(program)
    if isinstance(tree, str):
        return ParseError(FormatError.SYNTAX_ERROR, tree)
    if not defines_f(tree):
        return ParseError(FormatError.NO_F, "the program does not define a top-level function f")
    return Answer(kind="program", program=program)


# ---------------------------------------------------------------------------------------------
# Shared pieces


def _blocks(reply: object, limits: ParseLimits) -> list[Block] | ParseError:
    section = answer_section(reply, limits.max_reply_chars)
    if isinstance(section, ParseError):
        return section
    return fenced_blocks(section)


def _program_text(blocks: list[Block], bare: str | None, limits: ParseLimits) -> str | ParseError:
    """The last ```python block; else the last untagged block defining f; else (solver) bare code."""
    chosen = last_block(blocks, "python", untagged=False)
    if chosen is None:
        for block in reversed(blocks):
            if block.tag == "" and "def f" in block.content:
                chosen = block
                break
    if chosen is not None:
        program = chosen.content.strip("\n")
    elif bare is not None and not blocks and "def f" in bare:
        program = bare.strip("\n")
    else:
        return ParseError(FormatError.NO_CODE_BLOCK, "no ```python block defining f in the answer")
    if not program.strip():
        return ParseError(FormatError.NO_CODE_BLOCK, "the ```python block is empty")
    if len(program) > limits.max_program_chars:
        return ParseError(
            FormatError.TOO_LONG, f"program has {len(program)} characters (limit {limits.max_program_chars})"
        )
    return program


def _answer_text(reply: object, tag: str, limits: ParseLimits) -> str | ParseError:
    """Text of the last ``tag`` block, else the last untagged block, else the bare answer section."""
    section = answer_section(reply, limits.max_reply_chars)
    if isinstance(section, ParseError):
        return section
    blocks = fenced_blocks(section)
    block = last_block(blocks, tag)
    if block is not None:
        return block.content
    if blocks:
        missing = FormatError.NO_OUTPUT_BLOCK if tag == "output" else FormatError.NO_INPUT_BLOCK
        return ParseError(missing, f"no ```{tag} block in the answer")
    text = section.strip()
    if len(text) >= 2 and text[0] == text[-1] == "`":
        text = text.strip("`")
    return text
