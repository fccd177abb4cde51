"""Is a predicted math answer equal to the gold one? Plain numbers first, then math-verify.

:func:`numeric_verdict` is pure string work and safe to call anywhere (linear-time regexes, no eval).
:func:`verify_latex` calls sympy through math-verify and can hang on hostile input, so it only runs in
the killable worker processes of :mod:`azr.eval.math_grader`, with math-verify's own signal-based
timeouts switched off (they break outside the main thread and we enforce our own).
"""

from __future__ import annotations

import functools
import logging
import re
from fractions import Fraction
from typing import Any

_NUMBER = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|[-+]?\.\d+")
_FRAC = re.compile(r"([-+]?)\\[dt]?frac\{([-+]?\d+)\}\{([-+]?\d+)\}")
_SLASH = re.compile(r"([-+]?\d+)/(\d+)")
_WRAPPERS = re.compile(r"\\(?:text|textbf|mbox|mathrm|mathbf|textrm)\s*\{([^{}]*)\}")
_NOISE = re.compile(r"\^\{\\circ\}|\^\\circ|\\circ|\\degree|\\[,;:! ]|\\\$|\$|~|\{,\}|\\left|\\right|\\%|%")
# "18 dollars", "5 cm", "3 sq. ft": one number then words only. Words need separators, so no backtracking blow-up.
_UNIT_TAIL = re.compile(r"^(.*?\d)\s+[A-Za-z]{2,}(?:[.\s]+[A-Za-z]+)*\.?$")
# Relative tolerance for two plain numbers when the set gives none (math-verify rounds floats to 6 places).
DEFAULT_REL_TOL = 1e-6


def parse_number(text: str) -> Fraction | None:
    """'1,000' / '\\$18' / '18 dollars' / '\\text{18}' / '50\\%' / '-\\frac{3}{4}' / '0.5' -> the number;
    anything more complex (expressions, sets, symbols) -> None. A percent sign is dropped, not /100:
    a set that asks for a percentage has the percentage as its gold."""
    if len(text) > 200:
        return None
    s = _WRAPPERS.sub(lambda m: m.group(1), text)
    s = _NOISE.sub("", s).strip()
    s = s.rstrip(".").strip()
    unit = _UNIT_TAIL.match(s)
    if unit and not re.search(r"[A-Za-z]", unit.group(1)):
        s = unit.group(1)
    s = s.replace(" ", "")
    for pattern, build in (
        (_NUMBER, lambda m: Fraction(m.group(0).replace(",", ""))),
        (_FRAC, lambda m: (-1 if m.group(1) == "-" else 1) * _ratio(m.group(2), m.group(3))),
        (_SLASH, lambda m: _ratio(m.group(1), m.group(2))),
    ):
        match = pattern.fullmatch(s)
        if match:
            try:
                return build(match)
            except (ZeroDivisionError, ValueError):
                return None
    return None


def _ratio(num: str, den: str) -> Fraction:
    return Fraction(int(num), int(den))


def numbers_equal(gold: Fraction, pred: Fraction, tolerance: float | None = None, exact: bool = False) -> bool:
    """``exact`` for two integers/fractions (1450000 != 1450001); otherwise a relative 1e-6, so
    a decimal approximation such as 0.333333 matches 1/3."""
    if tolerance is not None:  # OlympiadBench's `error`: an absolute tolerance (its judge allows 1% slack)
        return abs(float(gold - pred)) <= tolerance * 1.01
    if exact:
        return gold == pred
    return abs(gold - pred) <= Fraction(DEFAULT_REL_TOL) * max(1, abs(gold))


def numeric_verdict(gold: str, pred: str, numeric: bool, tolerance: float | None = None) -> bool | None:
    """True/False when plain-number comparison settles it, None when math-verify must decide.

    For numeric sets (GSM8K, AMC, AIME) and items with their own tolerance a parsed number is final
    either way. For the others only a match is final; a mismatch goes on to math-verify (it also
    knows 0.5 = 50% = \\frac12)."""
    g = parse_number(gold)
    p = parse_number(pred)
    if g is None or p is None:
        return None
    if numbers_equal(g, p, tolerance, exact="." not in gold and "." not in pred):
        return True
    return False if numeric or tolerance is not None else None


# --- math-verify (worker processes only) ----------------------------------------------------------

@functools.lru_cache(maxsize=1)
def _configs() -> list[Any]:
    """LaTeX extraction only, boxed first, math-verify's default normalisation (units, ``\\frac43`` /
    ``\\sqrt2`` shorthands, leading-dot decimals). No plain-expression fallback: on text that does not
    parse as LaTeX it picks out a stray number (``\\hbar\\omega(v+1/2)`` -> 2), which would credit
    a wrong answer that happens to be that number."""
    from math_verify import LatexExtractionConfig

    logging.getLogger("math_verify").setLevel(logging.ERROR)  # silences "timeout is disabled" notes
    return [LatexExtractionConfig(boxed_match_priority=0)]


@functools.lru_cache(maxsize=4096)
def _parse_gold(gold: str) -> list[Any]:
    from math_verify import parse

    return parse("\\boxed{" + gold + "}", extraction_config=_configs(), parsing_timeout=None)


def verify_latex(gold: str, pred: str) -> bool:
    """math-verify's parse + verify with its timeouts disabled (``parsing_timeout=None``,
    ``timeout_seconds=None``: math-verify 0.9 then skips its SIGALRM wrapper entirely)."""
    from math_verify import parse, verify

    gold_parsed = _parse_gold(gold)
    pred_parsed = parse("\\boxed{" + pred + "}", extraction_config=_configs(), parsing_timeout=None)
    if not gold_parsed or not pred_parsed:
        return False
    return bool(verify(gold_parsed, pred_parsed, timeout_seconds=None))


def warm_up() -> None:
    """Import sympy/math-verify and build the configs once (in the fork server, before workers fork)."""
    _configs()
    verify_latex("\\frac{1}{2}", "0.5")
