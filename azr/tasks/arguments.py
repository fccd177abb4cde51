"""Argument lists (``'abc', [1, 2], k=3``): parsed as literals, rebuilt from canonical encodings.

An argument list written by a model is never spliced into code. It is parsed as the body of a call
``f(<text>)`` and accepted only when the whole expression is exactly one call to ``f`` whose
arguments are plain-data literals, so ``0) or (1`` (which would splice into ``f(0) or (1)``) is a
format error. The call sent to the sandbox is rebuilt from canonical :class:`sandbox.Value` texts.
"""

from __future__ import annotations

import ast
import keyword
import warnings
from dataclasses import dataclass

from azr.tasks.analysis import quiet_parse
from azr.tasks.errors import FormatError, ParseError
from sandbox.values import LiteralError, Value, encode, parse_literal


@dataclass(frozen=True)
class Arguments:
    """Positional and keyword arguments of one call to ``f``, as canonical values."""

    args: tuple[Value, ...] = ()
    kwargs: tuple[tuple[str, Value], ...] = ()

    @property
    def text(self) -> str:
        """Canonical argument-list text; ``parse_arguments(a.text) == a``."""
        parts = [v.text for v in self.args] + [f"{k}={v.text}" for k, v in self.kwargs]
        return ", ".join(parts)

    def call(self, name: str = "f") -> str:
        """The expression to evaluate in the sandbox, built only from canonical encodings."""
        return f"{name}({self.text})"

    @classmethod
    def of(cls, *args: object, **kwargs: object) -> Arguments:
        """Build from trusted Python values (tests, seed data)."""
        return cls(
            tuple(Value(encode(a)) for a in args), tuple((k, Value(encode(v))) for k, v in kwargs.items())
        )


def parse_arguments(text: object, max_chars: int = 2000) -> Arguments | ParseError:
    """Parse an argument list such as ``'abc', [1, 2], k=3`` without executing anything."""
    if not isinstance(text, str):
        return ParseError(FormatError.NOT_TEXT, "argument list is not a string")
    if len(text) > max_chars:
        return ParseError(
            FormatError.TOO_LONG, f"argument list has {len(text)} characters (limit {max_chars})"
        )
    body = text.strip()
    if not body:
        return ParseError(FormatError.EMPTY_INPUT, "the input block holds no arguments")
    if "\x00" in body:
        return ParseError(FormatError.BAD_INPUT, "NUL byte in argument list")
    try:
        # The newline lets a trailing `# comment` in the block not swallow the closing parenthesis.
        tree = quiet_parse("f(" + body + "\n)", mode="eval")
    except (SyntaxError, ValueError, MemoryError, RecursionError, OverflowError) as exc:
        return ParseError(FormatError.BAD_INPUT, f"not an argument list ({type(exc).__name__})")
    call = tree.body if isinstance(tree, ast.Expression) else None
    if not (
        isinstance(call, ast.Call)
        and isinstance(call.func, ast.Name)
        and call.func.id == "f"
        and call.func.lineno == 1
        and call.func.col_offset == 0
    ):
        return ParseError(FormatError.BAD_INPUT, "text is not a plain argument list for f(...)")
    args: list[Value] = []
    for node in call.args:
        if isinstance(node, ast.Starred):
            return ParseError(FormatError.BAD_INPUT, "*-unpacking is not allowed in an argument list")
        value = _literal(node)
        if isinstance(value, ParseError):
            return value
        args.append(value)
    kwargs: list[tuple[str, Value]] = []
    for kw in call.keywords:
        if kw.arg is None:
            return ParseError(FormatError.BAD_INPUT, "**-unpacking is not allowed in an argument list")
        if not kw.arg.isidentifier() or keyword.iskeyword(kw.arg):
            return ParseError(FormatError.BAD_INPUT, "keyword is not a valid identifier")
        if any(kw.arg == name for name, _ in kwargs):
            return ParseError(FormatError.BAD_INPUT, f"keyword argument {kw.arg!r} repeated")
        value = _literal(kw.value)
        if isinstance(value, ParseError):
            return value
        kwargs.append((kw.arg, value))
    return Arguments(tuple(args), tuple(kwargs))


def parse_value(text: object, max_chars: int = 2000) -> Value | ParseError:
    """Parse one plain-data literal (a deduction answer, a stored output) into its canonical Value."""
    if not isinstance(text, str):
        return ParseError(FormatError.NOT_TEXT, "literal is not a string")
    if len(text) > max_chars:
        return ParseError(FormatError.TOO_LONG, f"literal has {len(text)} characters (limit {max_chars})")
    if not text.strip():
        return ParseError(FormatError.BAD_LITERAL, "empty literal")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            value = Value(encode(parse_literal(text)))
    except (LiteralError, RecursionError, MemoryError, ValueError, OverflowError) as exc:
        return ParseError(FormatError.BAD_LITERAL, _short(exc))
    if value.opaque:
        return ParseError(
            FormatError.BAD_LITERAL,
            "literal is not plain data (too large, too deep, or holds an opaque marker)",
        )
    return value


def _literal(node: ast.expr) -> Value | ParseError:
    try:
        source = ast.unparse(node)
    except (RecursionError, MemoryError, ValueError) as exc:
        return ParseError(FormatError.BAD_LITERAL, f"argument cannot be read back ({type(exc).__name__})")
    value = parse_value(source, max_chars=len(source) + 1)
    if isinstance(value, ParseError):
        return ParseError(FormatError.BAD_LITERAL, f"argument is not a plain literal: {value.detail}")
    return value


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 200 else text[:200] + "..."
