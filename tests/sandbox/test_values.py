"""The value channel: canonical encoding round trips over generated plain data (in the parent and
through a real sandbox), and ``parse_literal`` refusing anything that is code."""

from __future__ import annotations

import math
import os
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sandbox import LiteralError, Value, encode, parse_literal
from tests.sandbox.conftest import run

odd_text = st.lists(
    st.text(max_size=4)
    | st.sampled_from(["\x00", "\n", "\r", "'", '"', "\\", "\u2028", "\ufeff", "\U0001f600", "\u0301", "\ud800",
                       "\udfff", "<opaque:", "<opaque:Foo>", "float('nan')", "]}),"]),
    max_size=4,
).map("".join)
floats = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([0.0, -0.0, 1e308, 5e-324, -1.5])
scalars = (
    st.none() | st.booleans() | st.integers(min_value=-(10**30), max_value=10**30) | floats
    | st.complex_numbers(allow_nan=True, allow_infinity=True) | odd_text | st.binary(max_size=12)
)
hashables = st.recursive(
    scalars, lambda inner: st.tuples(inner, inner) | st.frozensets(inner, max_size=3), max_leaves=6
)
plain = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=4).map(tuple)
        | st.dictionaries(hashables, inner, max_size=4)
        | st.sets(hashables, max_size=4)
        | st.frozensets(hashables, max_size=4)
    ),
    max_leaves=12,
)


def _same(a: object, b: object) -> bool:
    """Structural equality where nan equals nan and -0.0 differs from 0.0 (what canonical text promises)."""
    return encode(a) == encode(b)


@settings(max_examples=300, deadline=None)
@given(plain)
def test_parse_literal_of_encode_reencodes_identically(x):
    text = encode(x)
    assert encode(parse_literal(text)) == text
    assert Value.from_literal(text) == Value.from_python(x) or Value.from_python(x).opaque


@settings(max_examples=200, deadline=None)
@given(plain)
def test_encoding_is_canonical_for_equal_values(x):
    y = parse_literal(encode(x))
    assert _same(x, y)
    if isinstance(x, (set, frozenset, dict)):  # order of construction never shows in the text
        rebuilt = type(x)(reversed(list(x.items()))) if isinstance(x, dict) else type(x)(reversed(list(x)))
        assert encode(rebuilt) == encode(x)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plain)
def test_a_value_returned_by_a_job_equals_the_parent_encoding(sb, x):
    text = encode(x)
    res = run(sb, "pass", [text])
    assert res.status == "ok", (text, res.error)
    assert res.values[0] == Value.from_python(x), (text, res.values[0].text)


def test_typed_equality_and_special_floats():
    v = Value.from_python
    assert v(6) != v(6.0) != v(True)
    assert v(0.0) != v(-0.0)
    assert v(float("nan")) == v(float("nan"))
    assert v(float("inf")) != v(float("-inf"))
    assert v([1, 2]) != v((1, 2))
    assert v({1, 2}) != v(frozenset({1, 2}))
    assert v({2: "b", 1: "a"}) == v({1: "a", 2: "b"})
    assert v(set()).text == "set()" and v(frozenset()).text == "frozenset()"
    assert v(complex(1, -0.0)).to_python() == complex(1, -0.0)
    assert math.copysign(1, v(-0.0).to_python()) == -1


def test_ordinary_spellings_are_accepted_and_canonicalised():
    cases = {"{1, 2}": "{1, 2}", "-3": "-3", "+3": "3", "1+2j": "complex(1.0, 2.0)", "(1)": "1", "[ 1 ,2 ]": "[1, 2]",
             "float('inf')": "float('inf')", "'a' 'b'": "'ab'", "{'b': 1, 'a': 2}": "{'a': 2, 'b': 1}", "0x10": "16",
             "1_000": "1000", "frozenset([2, 1])": "frozenset({1, 2})", "  7 ": "7", "-0.0": "-0.0"}
    for text, canonical in cases.items():
        assert Value.from_literal(text).text == canonical, text


@pytest.mark.parametrize(
    "text",
    [
        "__import__('os')", "__import__('os').system('touch {m}')", "f(1)", "open('{m}', 'w')", "1 if x else 2",
        "lambda: 1", "(lambda: 1)()", "os.path", "x", "True.real", "0) or (1", "(0) or (1)", "1 + 1", "2 * 3", "not 1",
        "[i for i in range(3)]", "{**a}", "{*a}", "[*a]", "...", "(yield)", "await x", "x := 1", "a[0]", "'a' + 'b'",
        "'%s' % 1", "f'{1}'", "set([1])", "frozenset(x)", "float('1e5')", "float(1)", "complex(1j, 2)", "int('1')",
        "print('x')", "eval('1')", "exec('1')", "getattr(1, 'real')", "().__class__", "[].__class__.__base__",
        "b'a' + b'b'", "{[1]: 2}", "{[1]}", "1; 2", "import os", "1\n2", "", "   ", "\x00", "1 == 1", "1 < 2",
        "-'a'", "-(1, 2)", "1j + 1j", "(1+2j)+3", "set(1)", "float('nan', 1)", "complex(1, 2, 3)", "complex(a=1)",
        "globals()", "vars()", "breakpoint()", "[1, 2",
    ],
)
def test_parse_literal_rejects_code(text, tmp_path):
    marker = str(tmp_path / f"m-{uuid.uuid4().hex}")
    with pytest.raises(LiteralError):
        parse_literal(text.replace("{m}", marker))
    assert not os.path.exists(marker)


@pytest.mark.parametrize("depth", [250, 10_000, 100_000])
def test_parse_literal_rejects_absurd_nesting_cleanly(depth):
    with pytest.raises(LiteralError):
        parse_literal("[" * depth + "]" * depth)


def test_parse_literal_rejects_non_strings_and_oversized_input():
    for bad in (b"1", 1, None, ["1"]):
        with pytest.raises(LiteralError):
            parse_literal(bad)  # type: ignore[arg-type]
    with pytest.raises(LiteralError):
        parse_literal("1" * 100, max_chars=10)


def test_opaque_markers_are_never_equal():
    for text in ("<opaque:Foo>", "[1, <opaque:Foo>]", "{'k': <opaque:too-large>}", "<opaque:too-deep>"):
        a, b = Value(text), Value(text)
        assert a.opaque and a != b and a != a
        with pytest.raises(LiteralError):
            a.to_python()
