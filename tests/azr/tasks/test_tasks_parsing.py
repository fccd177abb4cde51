"""What the parsers accept: tolerant of small-model sloppiness, strict about what counts as an answer."""

from __future__ import annotations

import pytest

from azr.tasks import Arguments, FormatError, ParseError, parse_arguments, parse_value
from azr.tasks.parsing import (
    ParseLimits,
    parse_induction_proposal,
    parse_input_answer,
    parse_output_answer,
    parse_program_answer,
    parse_program_proposal,
)
from sandbox import Value

PROGRAM = "def f(a, b=1):\n    return a * b"


def code(err: object) -> FormatError:
    assert isinstance(err, ParseError), err
    return err.code


@pytest.mark.parametrize(
    "reply",
    [
        "<think> a </think> <answer>```output\n6\n```</answer>",
        "<answer>```output\n6\n```</answer>",  # no <think>
        "reasoning without tags </think>\n<answer>\n```output\n  6  \n```",  # no </answer>
        "<answer>```output\n6",  # unterminated fence
        "<answer>```\n6\n```</answer>",  # fence without a tag
        "<answer> 6 </answer>",  # no fence at all
        "<answer>`6`</answer>",
        "<ANSWER>```Output\n6\n```</ANSWER>",
        "<answer>```output\n5\n```</answer> more text <answer>```output\n6\n```</answer>",  # last wins
        "<answer>```output\n5\n```\n```output\n6\n```</answer>",  # last block wins
    ],
)
def test_output_answer_tolerance(reply: str) -> None:
    answer = parse_output_answer(reply)
    assert not isinstance(answer, ParseError), answer
    assert answer.output == Value("6")


def test_output_answer_errors() -> None:
    assert code(parse_output_answer("6")) is FormatError.NO_ANSWER_TAG
    assert code(parse_output_answer("<answer>  </answer>")) is FormatError.EMPTY_ANSWER
    assert code(parse_output_answer("<answer>```input\n6\n```</answer>")) is FormatError.NO_OUTPUT_BLOCK
    assert code(parse_output_answer("<answer>```output\nsix\n```</answer>")) is FormatError.BAD_LITERAL
    assert code(parse_output_answer("<answer>" + "1" * 3000 + "</answer>")) is FormatError.TOO_LONG
    assert code(parse_output_answer("x" * 100, ParseLimits(max_reply_chars=50))) is FormatError.TOO_LONG
    assert code(parse_output_answer(None)) is FormatError.NOT_TEXT


def test_output_answers_are_canonical_and_typed() -> None:
    answer = parse_output_answer("<answer>```output\n{3: 'b', 1: ( 'a', )}\n```</answer>")
    assert not isinstance(answer, ParseError)
    assert answer.output == Value("{1: ('a',), 3: 'b'}")
    six = parse_output_answer("<answer>```output\n6.0\n```</answer>")
    assert not isinstance(six, ParseError) and six.output != Value("6")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("'abc', [1, 2]", Arguments.of("abc", [1, 2])),
        ("  'abc' ,[1,2] , \n", Arguments.of("abc", [1, 2])),
        ("b=2, a=1", Arguments.of(b=2, a=1)),
        ("1, k={'x': {2, 1}}", Arguments.of(1, k={"x": {1, 2}})),
        ("(1,)", Arguments.of((1,))),
        ("-3, 1+2j, float('nan')", Arguments.of(-3, 1 + 2j, float("nan"))),
        ("'a'  # the string", Arguments.of("a")),
    ],
)
def test_argument_lists(text: str, expected: Arguments) -> None:
    parsed = parse_arguments(text)
    assert parsed == expected
    assert isinstance(parsed, Arguments) and parse_arguments(parsed.text) == parsed  # canonical round trip


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0) or (1", FormatError.BAD_INPUT),  # would splice into `f(0) or (1)`
        ("1)(2", FormatError.BAD_INPUT),
        ("1), f(2", FormatError.BAD_INPUT),
        ("*[1, 2]", FormatError.BAD_INPUT),
        ("**{'a': 1}", FormatError.BAD_INPUT),
        ("a=1, a=2", FormatError.BAD_INPUT),
        ("x", FormatError.BAD_LITERAL),
        ("__import__('os')", FormatError.BAD_LITERAL),
        ("[i for i in range(3)]", FormatError.BAD_LITERAL),
        ("'a' * 3", FormatError.BAD_LITERAL),
        ("", FormatError.EMPTY_INPUT),
        ("  \n ", FormatError.EMPTY_INPUT),
        ("1" * 3000, FormatError.TOO_LONG),
        ("1\x00", FormatError.BAD_INPUT),
    ],
)
def test_bad_argument_lists(text: str, expected: FormatError) -> None:
    assert code(parse_arguments(text)) is expected


def test_calls_are_rebuilt_from_canonical_encodings() -> None:
    parsed = parse_arguments("  {'b': 1,'a':2} ,  s = 'x'  # comment")
    assert isinstance(parsed, Arguments)
    assert parsed.call() == "f({'a': 2, 'b': 1}, s='x')"


def test_parse_value_rejects_non_literals() -> None:
    assert parse_value("[1, (2, 3)]") == Value("[1, (2, 3)]")
    for text in ["", "f()", "1 + 1", "[1] * 3", "x.y", "{**a}", "...", "[" * 5000]:
        assert code(parse_value(text)) in (FormatError.BAD_LITERAL, FormatError.TOO_LONG)


def test_program_proposal() -> None:
    reply = f"<think>plan</think><answer>\n```python\n{PROGRAM}\n```\n```input\n'ab', b=3\n```\n</answer>"
    proposal = parse_program_proposal(reply)
    assert not isinstance(proposal, ParseError)
    assert proposal.program == PROGRAM
    assert proposal.inputs == (Arguments.of("ab", b=3),)
    # The input may come before the code; an untagged code block defining f is accepted.
    swapped = parse_program_proposal(f"<answer>```input\n1\n```\n```\n{PROGRAM}\n```</answer>")
    assert not isinstance(swapped, ParseError) and swapped.program == PROGRAM


def test_program_proposal_errors() -> None:
    assert code(parse_program_proposal("<answer>```input\n1\n```</answer>")) is FormatError.NO_CODE_BLOCK
    assert (
        code(parse_program_proposal(f"<answer>```python\n{PROGRAM}\n```</answer>"))
        is FormatError.NO_INPUT_BLOCK
    )
    bad = f"<answer>```python\n{PROGRAM}\n```\n```input\n0) or (1\n```</answer>"
    assert code(parse_program_proposal(bad)) is FormatError.BAD_INPUT
    long_program = "<answer>```python\n" + "x = 1\n" * 3000 + "```\n```input\n1\n```</answer>"
    assert code(parse_program_proposal(long_program)) is FormatError.TOO_LONG


def _induction_reply(n: int, message: str = "doubles a number") -> str:
    inputs = "\n".join(f"```input\n{i}\n```" for i in range(n))
    return f"<answer>{inputs}\n```message\n{message}\n```</answer>"


def test_induction_proposal() -> None:
    proposal = parse_induction_proposal(_induction_reply(10))
    assert not isinstance(proposal, ParseError)
    assert [a.text for a in proposal.inputs] == [str(i) for i in range(10)]
    assert proposal.message == "doubles a number" and proposal.program == ""
    more = parse_induction_proposal(_induction_reply(12))  # more than needed: the last ones win
    assert not isinstance(more, ParseError) and more.inputs[0].text == "2"
    assert code(parse_induction_proposal(_induction_reply(9))) is FormatError.WRONG_INPUT_COUNT
    assert code(parse_induction_proposal(_induction_reply(10, message=" "))) is FormatError.NO_MESSAGE_BLOCK
    assert code(parse_induction_proposal(_induction_reply(10, message="m" * 3000))) is FormatError.TOO_LONG
    assert code(parse_induction_proposal("<answer>```message\nx\n```</answer>")) is FormatError.NO_INPUT_BLOCK


def test_input_answer() -> None:
    answer = parse_input_answer("<answer>```input\nb=2, a=1\n```</answer>")
    assert not isinstance(answer, ParseError) and answer.arguments == Arguments.of(b=2, a=1)
    assert code(parse_input_answer("<answer>```input\n0) or (1\n```</answer>")) is FormatError.BAD_INPUT
    assert code(parse_input_answer("<answer>```output\n1\n```</answer>")) is FormatError.NO_INPUT_BLOCK


def test_program_answer() -> None:
    answer = parse_program_answer(f"<answer>```python\n{PROGRAM}\n```</answer>")
    assert not isinstance(answer, ParseError) and answer.program == PROGRAM
    bare = parse_program_answer(f"<answer>\n{PROGRAM}\n</answer>")
    assert not isinstance(bare, ParseError) and bare.program.strip() == PROGRAM
    assert code(parse_program_answer("<answer>```python\ndef f(:\n```</answer>")) is FormatError.SYNTAX_ERROR
    assert (
        code(parse_program_answer("<answer>```python\ndef g(a):\n    return a\n```</answer>"))
        is FormatError.NO_F
    )
    assert code(parse_program_answer("<answer>```python\n\n```</answer>")) is FormatError.NO_CODE_BLOCK
    assert code(parse_program_answer("<answer>42</answer>")) is FormatError.NO_CODE_BLOCK
