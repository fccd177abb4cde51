"""Canonical, safe encoding of plain-data values.

A job's results cross from the sandboxed child to the parent only as *text* in a canonical
Python-literal form produced here. The parent never ``eval``s, ``exec``s or unpickles it: it
parses the text with a restricted AST walker (:func:`parse_literal`) that accepts literals and
nothing else. Equal encodings mean equal values, so comparisons happen on the text, in the parent,
where a hostile ``__eq__`` cannot run.

This file is imported by the zygote (stdlib only, no package imports) and by the parent.

Canonical form:
  None / True / False; ints in decimal (at most ``MAX_INT_DIGITS`` digits); floats by ``repr``,
  with ``float('nan')``, ``float('inf')``, ``float('-inf')``; ``complex(re, im)`` with float parts;
  ``str``/``bytes`` by ``repr``; lists, tuples; dicts with entries sorted by encoded key; sets and
  frozensets with elements sorted by encoding (``set()``/``frozenset()`` when empty).
  Anything else becomes an opaque marker ``<opaque:TypeName>`` (or ``<opaque:too-large>``,
  ``<opaque:too-deep>``), which is never equal to anything, not even itself.
"""

from __future__ import annotations

import ast
import math

MAX_INT_DIGITS = 4000
MAX_DEPTH = 64
DEFAULT_MAX_CHARS = 100_000
OPAQUE_PREFIX = "<opaque:"

# Standard-library dict subclasses whose equality with a plain dict holds; they encode as dicts.
_DICT_LIKE = {"OrderedDict", "defaultdict", "Counter"}
_DICT_LIKE_MODULE = "collections"


class LiteralError(ValueError):
    """The text is not a plain-data literal that :func:`parse_literal` accepts."""


class _TooLarge(Exception):
    pass


def _float_text(x: float) -> str:
    if math.isnan(x):
        return "float('nan')"
    if math.isinf(x):
        return "float('inf')" if x > 0 else "float('-inf')"
    return float.__repr__(x)


def encode(obj: object, max_chars: int = DEFAULT_MAX_CHARS) -> str:
    """Return the canonical literal text of ``obj``.

    Uses exact-type checks and base-class methods only (``str.__repr__(x)``, ``dict.items(x)``),
    so no method defined by the job is ever called. Structures past ``max_chars``, ``MAX_DEPTH`` or
    with cycles become opaque markers instead of raising.
    """
    budget = [max_chars]
    try:
        return _encode(obj, 0, budget)
    except _TooLarge:
        return OPAQUE_PREFIX + "too-large>"


def _spend(budget: list[int], text: str, charged: int | None = None) -> str:
    """Charge ``charged`` characters (default: all of ``text``) against the budget. Containers
    charge only their own brackets and separators: their items were charged already."""
    budget[0] -= len(text) if charged is None else charged
    if budget[0] < 0:
        raise _TooLarge
    return text


def _join(budget: list[int], items: list[str], open_: str, close: str, sep: str = ", ") -> str:
    text = open_ + sep.join(items) + close
    return _spend(budget, text, len(open_) + len(close) + len(sep) * max(0, len(items) - 1))


def _encode(obj: object, depth: int, budget: list[int]) -> str:
    t = type(obj)
    if obj is None:
        return _spend(budget, "None")
    if t is bool:
        return _spend(budget, "True" if obj else "False")
    if t is int:
        if int.bit_length(obj) > MAX_INT_DIGITS * 3.32:  # type: ignore[arg-type]
            raise _TooLarge
        return _spend(budget, int.__repr__(obj))  # type: ignore[arg-type]
    if t is float:
        return _spend(budget, _float_text(obj))  # type: ignore[arg-type]
    if t is complex:
        c: complex = obj  # type: ignore[assignment]
        return _spend(budget, f"complex({_float_text(c.real)}, {_float_text(c.imag)})")
    if t is str:
        if len(obj) > budget[0]:  # type: ignore[arg-type]
            raise _TooLarge
        return _spend(budget, str.__repr__(obj))  # type: ignore[arg-type]
    if t is bytes:
        if len(obj) > budget[0]:  # type: ignore[arg-type]
            raise _TooLarge
        return _spend(budget, bytes.__repr__(obj))  # type: ignore[arg-type]
    if depth >= MAX_DEPTH:
        return OPAQUE_PREFIX + "too-deep>"
    if t is list:
        return _join(budget, [_encode(x, depth + 1, budget) for x in list.__iter__(obj)], "[", "]")  # type: ignore[arg-type]
    if t is tuple:
        items = [_encode(x, depth + 1, budget) for x in tuple.__iter__(obj)]  # type: ignore[arg-type]
        return _join(budget, items, "(", ",)" if len(items) == 1 else ")")
    if t is dict or (
        isinstance(obj, dict) and t.__name__ in _DICT_LIKE and t.__module__ == _DICT_LIKE_MODULE
    ):
        pairs = sorted(
            (_encode(k, depth + 1, budget), _encode(v, depth + 1, budget))
            for k, v in dict.items(obj)  # type: ignore[arg-type]
        )
        return _join(budget, [_spend(budget, f"{k}: {v}", 2) for k, v in pairs], "{", "}")
    if t is set or t is frozenset:
        items = sorted(_encode(x, depth + 1, budget) for x in (set.__iter__ if t is set else frozenset.__iter__)(obj))  # type: ignore[arg-type]
        if t is set:
            return _join(budget, items, "{", "}") if items else _spend(budget, "set()")
        return _join(budget, items, "frozenset({", "})") if items else _spend(budget, "frozenset()")
    name = getattr(t, "__qualname__", "object")
    if type(name) is not str:
        name = "object"
    return OPAQUE_PREFIX + "".join(ch for ch in name[:80] if ch.isalnum() or ch in "._") + ">"


# ----------------------------------------------------------------------------------------------
# Parent side: parse canonical text (or a model's answer) without executing anything.

_MAX_PARSE_CHARS = 2_000_000


def parse_literal(text: str, max_chars: int = _MAX_PARSE_CHARS) -> object:
    """Parse a plain-data Python literal safely (never executes code).

    Accepts everything :func:`encode` writes plus ordinary literal spellings (``{1, 2}``,
    ``-3``, ``1+2j``). Raises :class:`LiteralError` with a short reason for anything else:
    names, calls other than ``set()``/``frozenset(...)``/``float('nan'|'inf'|'-inf')``/
    ``complex(a, b)``, attribute access, operators other than unary +/- and complex sums.
    """
    if not isinstance(text, str):
        raise LiteralError("not a string")
    if len(text) > max_chars:
        raise LiteralError(f"literal longer than {max_chars} characters")
    if "\x00" in text:
        raise LiteralError("NUL byte in literal")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError, MemoryError, RecursionError) as exc:
        raise LiteralError(f"not a Python literal ({type(exc).__name__})") from None
    try:
        return _convert(tree.body, 0)
    except RecursionError:
        raise LiteralError("literal nested too deeply") from None


def _number(node: ast.AST, depth: int) -> object:
    value = _convert(node, depth)
    if type(value) not in (int, float, complex):
        raise LiteralError("operator applied to a non-number")
    return value


def _convert(node: ast.AST, depth: int) -> object:
    if depth > 200:
        raise LiteralError("literal nested too deeply")
    d = depth + 1
    if isinstance(node, ast.Constant):
        if node.value is Ellipsis:
            raise LiteralError("Ellipsis is not plain data")
        return node.value
    if isinstance(node, ast.List):
        return [_convert(e, d) for e in node.elts]
    if isinstance(node, ast.Tuple):
        return tuple(_convert(e, d) for e in node.elts)
    if isinstance(node, ast.Set):
        return _hashable_set(node.elts, d, set)
    if isinstance(node, ast.Dict):
        if any(k is None for k in node.keys):
            raise LiteralError("dict unpacking (**) is not a literal")
        out: dict = {}
        for k, v in zip(node.keys, node.values):
            key = _convert(k, d)  # type: ignore[arg-type]
            try:
                out[key] = _convert(v, d)
            except TypeError:
                raise LiteralError("unhashable dict key") from None
        return out
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _number(node.operand, d)
        return -value if isinstance(node.op, ast.USub) else +value  # type: ignore[operator]
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub)):
        left, right = _number(node.left, d), _number(node.right, d)
        if type(right) is not complex or type(left) is complex:
            raise LiteralError("only complex literals like 1+2j may use + or -")
        return left + right if isinstance(node.op, ast.Add) else left - right  # type: ignore[operator]
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
        return _call(node.func.id, node.args, d)
    raise LiteralError(f"{type(node).__name__} is not allowed in a literal")


def _hashable_set(elts: list[ast.expr], depth: int, kind: type) -> object:
    try:
        return kind(_convert(e, depth) for e in elts)
    except TypeError:
        raise LiteralError("unhashable set element") from None


def _call(name: str, args: list[ast.expr], depth: int) -> object:
    if name == "set" and not args:
        return set()
    if name == "frozenset":
        if not args:
            return frozenset()
        if len(args) == 1 and isinstance(args[0], (ast.Set, ast.List, ast.Tuple)):
            return _hashable_set(args[0].elts, depth, frozenset)
    if (name == "float" and len(args) == 1 and isinstance(args[0], ast.Constant)
            and args[0].value in ("nan", "inf", "-inf", "+inf", "infinity", "-infinity")):
        return float(args[0].value)
    if name == "complex" and len(args) == 2:
        re_, im = _number(args[0], depth), _number(args[1], depth)
        if type(re_) is complex or type(im) is complex:
            raise LiteralError("complex() parts must be real")
        return complex(re_, im)  # type: ignore[arg-type]
    raise LiteralError(f"call to {name}() is not a literal")


class Value:
    """A canonical plain-data value: compare with ``==``, hash, print, or convert back.

    Equality is equality of canonical text, except that opaque values are never equal to anything.
    A value is opaque when its text is not a canonical plain-data literal: the marker for an object
    that is not plain data (``<opaque:Foo>``, possibly nested), or any text that is not exactly what
    :func:`encode` writes (a job can forge its result channel, but never make other text pass for
    data). ``nan`` equals
    ``nan`` here, so a program returning ``float('nan')`` is deterministic.
    """

    __slots__ = ("_plain", "text")

    def __init__(self, text: str, *, plain: bool | None = None) -> None:
        if not isinstance(text, str):
            raise TypeError("Value text must be str")
        self.text = text
        self._plain = plain  # None: not checked yet (checked once, on first use)

    @classmethod
    def from_python(cls, obj: object) -> Value:
        """Encode a trusted, parent-side object (e.g. a parsed gold answer)."""
        text = encode(obj)
        return cls(text, plain=None if OPAQUE_PREFIX in text else True)

    @classmethod
    def from_literal(cls, text: str) -> Value:
        """Parse a literal written by anyone (a model answer, a seed file) into its canonical form."""
        return cls.from_python(parse_literal(text))

    @property
    def opaque(self) -> bool:
        if self._plain is None:  # plain data only if the text is exactly the canonical form
            try:
                self._plain = encode(parse_literal(self.text, max_chars=len(self.text) + 1),
                                     max_chars=len(self.text) + 1) == self.text
            except LiteralError:
                self._plain = False
        return not self._plain

    @property
    def type_name(self) -> str:
        """The first marker's type name for opaque values, else the Python type of the value."""
        if self.opaque:
            at = self.text.find(OPAQUE_PREFIX)
            if at < 0:
                return "unparseable"
            end = self.text.find(">", at)
            return self.text[at + len(OPAQUE_PREFIX) : end if end > at else None]
        return type(self.to_python()).__name__

    def to_python(self) -> object:
        if self.opaque:
            raise LiteralError(f"{self.text[:80]} is not plain data")
        return parse_literal(self.text)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Value):
            return NotImplemented
        return self.text == other.text and not self.opaque

    def __hash__(self) -> int:
        return hash(self.text)

    def __repr__(self) -> str:
        return self.text
