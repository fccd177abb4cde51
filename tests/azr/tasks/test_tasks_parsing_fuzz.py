"""Every reply parser survives hostile text: a parsed result or a named format error, never an exception."""

from __future__ import annotations

import random
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from azr.tasks import (
    Answer,
    Arguments,
    FormatError,
    ParseError,
    Proposal,
    get_task_type,
    parse_arguments,
    parse_value,
)
from azr.tasks.parsing import (
    parse_induction_proposal,
    parse_input_answer,
    parse_output_answer,
    parse_program_answer,
    parse_program_proposal,
)
from azr.tasks.reply import answer_section, fenced_blocks
from sandbox import Value

REPLY_PARSERS = [
    (parse_program_proposal, Proposal),
    (parse_induction_proposal, Proposal),
    (parse_output_answer, Answer),
    (parse_input_answer, Answer),
    (parse_program_answer, Answer),
    *((get_task_type(n).parse_proposal, Proposal) for n in ("deduction", "abduction", "induction")),
    *((get_task_type(n).parse_answer, Answer) for n in ("deduction", "abduction", "induction")),
]
TEXT_PARSERS = [(parse_arguments, Arguments), (parse_value, Value)]


def assert_total(text: object) -> None:
    """Each parser returns its result type or a ParseError carrying a FormatError code."""
    for parser, kind in REPLY_PARSERS + TEXT_PARSERS:
        result = parser(text)
        if isinstance(result, ParseError):
            assert isinstance(result.code, FormatError), (parser, text)
            str(result)
        else:
            assert isinstance(result, kind), (parser, text, result)
    section = answer_section(text, 64_000)
    if isinstance(section, str):
        fenced_blocks(section)


FRAGMENTS = [
    "<think>", "</think>", "<answer>", "</answer>", "<ANSWER>", "</Answer>", "<answer><answer>",
    "```", "```python\n", "```py\n", "```input\n", "```output\n", "```message\n", "```\n", "``", "`",
    "\n", " ", "\t", "\r\n", "def f(a):\n    return a\n", "def f(*a, **k):\n    return 1\n", "def g(x): pass\n",
    "0) or (1", ")", "(", "f(", "1, 2", "'abc', [1, 2]", "k=3", "**{'a': 1}", "*[1]", "x for x in y",
    "__import__('os').system('rm -rf /')", "eval('1')", "lambda: 0", "import os", "1e999", "-0.0", "1+2j",
    "float('nan')", "set()", "frozenset({1})", "{1: 2, 3: [4]}", "(1,)", "b'\\x00'", "'\\ud800'", "\x00",
    "\ud800", "\udfff", "İ", "\u202e", "\ufeff", "🙂", "ſ", "K", "\\", "'''", '"""', "'", '"', "#", "# c\n",
    "9" * 5000, "[" * 300, "(" * 300, "{" * 300, "]" * 50, "a=" * 50, ",", ",,", "=", "None", "True",
]  # fmt: skip

# Block contents that parse, next to ones that must not.
CONTENTS = [
    "def f(a):\n    return a * 2", "def f(s, k=1):\n    return s[::k]", "class A:\n    pass\ndef f(x):\n    return x",
    "def f(a):\n    return (", "def g(a):\n    return a", "6", "'abc'", "[1, (2, 3), {'a': {4}}]", "float('nan')",
    "'abc', [1, 2]", "s='xy', k=-1", "1,", "0) or (1", "1)(2", "*[1]", "**{}", "__import__('os')", "x", "",
    "a helpful hint", "def f(a): return a", "9" * 3000, "'\ud800'", "\x00",
]  # fmt: skip

TAGS = ["python", "py", "Python", "input", "INPUT", "output", "message", "", "text", " input "]
GOOD_ARGS = ["1", "-7", "'abc', [1, 2]", "s='xy', k=-1", "(1,), {2: 3}", "[]", "'a' * 3"]


def grammar_reply(seed: int) -> str:
    """A reply built from the fragments above by a seeded RNG: cheap to draw, easy to reproduce."""
    rng = random.Random(seed)

    def noise(n: int) -> str:
        return "".join(rng.choice(FRAGMENTS) for _ in range(rng.randint(0, n)))

    def block(tag: str, content: str) -> str:
        return f"```{tag}\n{content}\n" + ("```" if rng.random() < 0.9 else "")

    kind = rng.random()
    if kind < 0.15:
        return noise(30)
    if kind < 0.35:  # induction-shaped: 9-12 input blocks and a message
        contents = [
            rng.choice(GOOD_ARGS) if rng.random() < 0.95 else rng.choice(CONTENTS)
            for _ in range(rng.randint(9, 12))
        ]
        blocks = [block("input", c) for c in contents] + [
            block("message", rng.choice(["hint", "", noise(3)]))
        ]
    else:
        blocks = [
            block(rng.choice(TAGS), rng.choice(CONTENTS) if rng.random() < 0.7 else noise(6))
            for _ in range(rng.randint(0, 6))
        ]
    closing = "</answer>" if rng.random() < 0.8 else ""
    return noise(4) + "<answer>" + "\n".join(blocks) + closing + noise(2)


replies = st.one_of(
    st.integers(0, 2**63).map(grammar_reply),
    st.integers(0, 2**63).map(grammar_reply),
    st.integers(0, 2**63).map(grammar_reply),
    st.text(max_size=200),
    st.binary(max_size=50).map(lambda b: b.decode("latin-1")),
)


@settings(
    max_examples=10_000,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(replies)
def test_generated_hostile_replies_never_crash(reply: str) -> None:
    assert_total(reply)


def _nested(depth: int) -> str:
    return "[" * depth + "1" + "]" * depth


NASTY = [
    "",
    None,
    12,
    b"<answer>```output\n1\n```</answer>",
    ["<answer>"],
    "<answer>",
    "<answer></answer>",
    "<answer>   \n\t </answer>",
    "no tags at all, just 6",
    "<think> ``` </think> <answer>```output\n",
    "<answer>```output\n6",  # unterminated fence and answer
    "<answer>```input\n0) or (1\n```</answer>",
    "<answer>```input\n1) + f(2\n```</answer>",
    "<answer>```input\n1)(2\n```</answer>",
    "<answer>```input\n**{'a': 1}\n```</answer>",
    "<answer>```input\n*[1, 2]\n```</answer>",
    "<answer>```input\nx=__import__('os')\n```</answer>",
    "<answer>```output\n__import__('os').getpid() and 1\n```</answer>",
    "<answer>```output\n(lambda: 1)()\n```</answer>",
    "<answer>```output\n" + _nested(100_000) + "\n```</answer>",
    "<answer>```input\n" + _nested(150) + "\n```</answer>",
    "<answer>```input\n" + _nested(900) + "\n```</answer>",
    "<answer>```output\n" + "9" * 10_000 + "\n```</answer>",
    "<answer>```output\n" + "-" * 1500 + "1\n```</answer>",
    "<answer>```python\n" + "x = (" * 5000 + "\n```</answer>",
    "<answer>```python\ndef f(a):\n    return a\x00\n```</answer>",
    "<answer>```python\ndef f(a):\n\treturn '\ud800'\n```</answer>",
    "<answer>```python\n" + "def f(a):\n" + "  " * 200 + "return a\n```</answer>",
    "<answer>```message\nhi\n```" + "```input\n1\n```" * 10 + "</answer>",
    "<answer>" + "```input\n1\n```" * 10_000 + "</answer>",
    "<answer>" * 10_000,
    "</answer>" * 10_000 + "<answer>1",
    "`" * 50_000,
    "x" * 10_000_000,  # over every reply limit
    "<answer>```output\n'\\N{DOES NOT EXIST}'\n```</answer>",
    "<answer>```output\n'\\x'\n```</answer>",
    "<answer>```output\n0" + "_" * 10 + "1\n```</answer>",
    "<answer>```output\n1" + "0" * 5000 + "\n```</answer>",
    "<answer>```output\n1e999999\n```</answer>",
    "<answer>```output\n{[1]: 2}\n```</answer>",
    "<answer>```output\n{{1}}\n```</answer>",
    "<answer>```output\n...\n```</answer>",
    "<answer>```output\n'<opaque:A>'\n```</answer>",
    "<answer>```input\nf=1, f=2\n```</answer>",
    "<answer>```input\nclass=1\n```</answer>",
    "<answer>```input\n1 # )\n```</answer>",
    "<answer>```input\n1\n#\n```</answer>",
    "<answer>```input\n'''\n```</answer>",
    "<answer>```\n```\n```\n```</answer>",
]


@pytest.mark.parametrize("reply", NASTY, ids=range(len(NASTY)))
def test_nasty_replies_never_crash(reply: object) -> None:
    assert_total(reply)


def test_injection_and_code_in_answers_are_format_errors() -> None:
    for text in ["0) or (1", "1) + f(2", "1)(2", "x=__import__('os')", "*[1]", "**{'a': 1}", "print(1)"]:
        result = parse_arguments(text)
        assert isinstance(result, ParseError)
        assert result.code in (FormatError.BAD_INPUT, FormatError.BAD_LITERAL)
    for text in ["__import__('os').getpid() and 1", "(lambda: 1)()", "x", "1 if 1 else 2"]:
        result = parse_value(text)
        assert isinstance(result, ParseError) and result.code is FormatError.BAD_LITERAL


def test_oversized_inputs_fail_fast() -> None:
    start = time.perf_counter()
    for parser, _kind in REPLY_PARSERS:
        result = parser("x" * 10_000_000)
        assert isinstance(result, ParseError) and result.code is FormatError.TOO_LONG
    assert time.perf_counter() - start < 2.0
