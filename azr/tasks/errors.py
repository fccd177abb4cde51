"""Named outcomes for everything that can go wrong with model text or a proposed task.

Parsers never raise on model output: they return a :class:`ParseError` whose ``code`` is a
:class:`FormatError`. Validation never raises on a bad proposal: it records a :class:`Rejection`.
Both are ``str`` enums so they log, compare and store as plain strings.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class FormatError(str, Enum):
    """Why a reply could not be turned into a proposal or an answer."""

    NOT_TEXT = "not_text"  # the reply is not a str at all
    TOO_LONG = "too_long"  # reply, block, literal or message over its size limit
    NO_ANSWER_TAG = "no_answer_tag"  # no <answer> section
    EMPTY_ANSWER = "empty_answer"  # <answer> section holds only whitespace
    NO_CODE_BLOCK = "no_code_block"  # no ```python block (and no untagged block defining f)
    NO_INPUT_BLOCK = "no_input_block"
    NO_OUTPUT_BLOCK = "no_output_block"
    NO_MESSAGE_BLOCK = "no_message_block"
    EMPTY_INPUT = "empty_input"  # an ```input block with no arguments
    BAD_INPUT = "bad_input"  # not an argument list: `0) or (1`, `*x`, `**d`, ...
    BAD_LITERAL = "bad_literal"  # an output or argument that is not a plain-data literal
    WRONG_INPUT_COUNT = "wrong_input_count"  # induction proposal with too few inputs
    SYNTAX_ERROR = "syntax_error"  # a solver's program does not parse
    NO_F = "no_f"  # a solver's program does not define a top-level function f


@dataclass(frozen=True)
class ParseError:
    """A reply that did not parse: a named code plus a short human-readable detail."""

    code: FormatError
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.code.value}: {self.detail}" if self.detail else self.code.value


class Rejection(str, Enum):
    """Why a proposed task was not accepted into the buffer."""

    PROGRAM_TOO_LONG = "program_too_long"
    SYNTAX_ERROR = "syntax_error"
    NO_F = "no_f"
    BANNED_IMPORT = "banned_import"
    BANNED_CALL = "banned_call"  # __import__, eval, exec, open, ... or a dunder escape hatch
    BAD_INPUT = "bad_input"  # an input that is not a plain argument list, or too long
    WRONG_INPUT_COUNT = "wrong_input_count"
    DUPLICATE_INPUTS = "duplicate_inputs"
    BAD_MESSAGE = "bad_message"  # induction message missing, too long or containing code
    TIMEOUT = "timeout"
    MEMORY = "memory"
    KILLED = "killed"
    RUNTIME_ERROR = "runtime_error"
    NONDETERMINISTIC = "nondeterministic"
    OUTPUT_NOT_PLAIN = "output_not_plain"
    OUTPUT_TOO_LARGE = "output_too_large"
    RETURNS_NONE = "returns_none"
    CONSTANT_OUTPUTS = "constant_outputs"  # induction: every input gives the same output
