"""A grammar of small deterministic Python functions ``f`` used to warm-start the embedded model.

Every program is a pipeline over one value: zero to two type-preserving *transforms* followed by
one *reducer* that returns. Each piece carries a plain-English description, so the corpus can
write messages and reasoning traces, and the program text of each prefix of the pipeline, so the
sandbox can compute the intermediate values of a trace. No imports, no randomness, no I/O: every
program is deterministic by construction, and inputs that make it fail are filtered out by running
it in the sandbox (never here).

The same grammar serves two disjoint splits, decided by a hash of the program text, so the
held-out evaluation set never shares a program with the training corpus or the seed buffer.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

ARG_TYPES = ("str", "list", "int")
SPLITS = ("train", "heldout")
HELDOUT_BUCKETS = 8  # one program text in HELDOUT_BUCKETS belongs to the held-out split
# Relative frequency of pipelines with 0, 1, 2, ... transforms before the reducer: short programs
# dominate, so the warmed-up model solves some tasks and RL has signal from the start.
TRANSFORM_WEIGHTS = (0.4, 0.35, 0.25)
MAX_MISSES = 5000  # draws in a row without a new program before a split counts as exhausted

# One parameter name per type: a tiny model otherwise spends its capacity (and many invalid
# proposals) on keeping names consistent; RL is free to vary them later.
_NAMES = {"str": ("s",), "list": ("nums",), "int": ("n",)}
_LETTERS = "abcdeilmnorst"
# Inputs are small on purpose: a tiny model can learn what short strings, 1-4 digits and ints up
# to 15 turn into, while it cannot compute on long ones.
_WORDS = ("cat", "dog", "abc", "moon", "tree", "code", "data", "kite", "noon", "level", "radar", "apple", "hello")


@dataclass(frozen=True)
class Piece:
    """One step of a pipeline: code lines over the variable ``{v}`` (and ``{k}``) plus a description."""

    lines: tuple[str, ...]
    desc: str
    out_type: str


@dataclass(frozen=True)
class Program:
    """A generated function, with what the corpus needs to render tasks about it."""

    source: str  # "def f(...):\n    ..."
    arg_type: str  # type of the first argument
    has_k: bool  # takes a second int argument ``k``
    steps: tuple[str, ...]  # descriptions of the transforms and the reducer, in order
    trace_sources: tuple[str, ...]  # one function ``_t{i}`` per transform returning the value after it
    n_steps: int  # number of pieces (transforms + reducer); a difficulty proxy

    @property
    def description(self) -> str:
        return ", then ".join(self.steps)

    @property
    def params(self) -> str:
        """The parameter list, e.g. ``"s, k"``."""
        return self.source.split("(", 1)[1].split(")", 1)[0]

    @property
    def split(self) -> str:
        return split_of(self.source)


def split_of(source: str) -> str:
    """Which split a program text belongs to; stable across runs and machines."""
    digest = hashlib.sha256(source.encode()).digest()
    return "heldout" if digest[0] % HELDOUT_BUCKETS == 0 else "train"


# ----------------------------------------------------------------------------------------------
# Pieces. Each function returns a Piece for the current type, with constants drawn from ``rng``.


def _str_transforms(rng: random.Random, has_k: bool) -> list[Piece]:
    a, b = rng.sample(_LETTERS, 2)
    i = rng.randint(1, 3)
    vowels = rng.choice(("aeiou", "aei", "ou"))
    out = [
        Piece(("{v} = {v}[::-1]",), "reverse the string", "str"),
        Piece(("{v} = {v}.upper()",), "make it upper case", "str"),
        Piece(("{v} = {v}.swapcase()",), "swap the case of each letter", "str"),
        Piece((f"{{v}} = {{v}}.replace('{a}', '{b}')",), f"replace '{a}' with '{b}'", "str"),
        Piece((f"{{v}} = {{v}}[{i}:] + {{v}}[:{i}]",), f"rotate it left by {i}", "str"),
        Piece(("{v} = ''.join(sorted({v}))",), "sort its characters", "str"),
        Piece((f"{{v}} = {{v}} + '{a}'",), f"append '{a}'", "str"),
        Piece((f"{{v}} = {{v}}[:{i + 2}]",), f"keep the first {i + 2} characters", "str"),
        Piece(
            ("result = ''", "for ch in {v}:", f"    if ch not in '{vowels}':", "        result += ch", "{v} = result"),
            f"drop the letters in '{vowels}'",
            "str",
        ),
        Piece(
            (
                "out = ''",
                "for i, ch in enumerate({v}):",
                "    if i % 2 == 0:",
                "        out += ch.upper()",
                "    else:",
                "        out += ch",
                "{v} = out",
            ),
            "upper-case every other character",
            "str",
        ),
        Piece(
            ("out = ''", "for ch in {v}:", "    out = ch + out", "{v} = out"),
            "build it backwards one character at a time",
            "str",
        ),
    ]
    if has_k:
        out += [
            Piece(("{v} = {v}[{k}:] + {v}[:{k}]",), "rotate it left by k", "str"),
            Piece(("{v} = {v} * {k}",), "repeat it k times", "str"),
        ]
    return out


def _str_reducers(rng: random.Random, has_k: bool) -> list[Piece]:
    c = rng.choice(_LETTERS)
    w = rng.randint(1, 3)
    out = [
        Piece(("return {v}",), "return it", "str"),
        Piece((f"return {{v}} + '{c}'",), f"return it with '{c}' appended", "str"),
        Piece(("return {v} * 2",), "return it twice", "str"),
        Piece(("return {v}[0]",), "return its first character", "str"),
        Piece(("return {v}[-1]",), "return its last character", "str"),
        Piece(("return len({v})",), "return its length", "int"),
        Piece((f"return {{v}}.count('{c}')",), f"return how many times '{c}' occurs", "int"),
        Piece(
            ("counts = {}", "for ch in {v}:", "    counts[ch] = counts.get(ch, 0) + 1", "return counts"),
            "return a dict counting each character",
            "dict",
        ),
        Piece(("return {v} == {v}[::-1]",), "return whether it is a palindrome", "bool"),
        Piece(("return sorted(set({v}))",), "return its distinct characters in sorted order", "list"),
        Piece(
            ("total = 0", "for ch in {v}:", "    if ch in 'aeiou':", f"        total += {w}", "    else:",
             "        total -= 1", "return total"),
            f"return a score: +{w} per vowel, -1 per other character",
            "int",
        ),
        Piece((f"return {{v}}.find('{c}')",), f"return the index of the first '{c}' (or -1)", "int"),
    ]
    if has_k:
        out.append(Piece(("return {v}[:{k}]",), "return the first k characters", "str"))
    return out


def _list_transforms(rng: random.Random, has_k: bool) -> list[Piece]:
    op, c = rng.choice((("+", rng.randint(1, 5)), ("-", rng.randint(1, 5)), ("*", rng.randint(2, 3))))
    m = rng.randint(2, 3)
    r = rng.randint(0, m - 1)
    t = rng.randint(0, 6)
    i = rng.randint(1, 2)
    word = {"+": "add", "-": "subtract", "*": "multiply by"}[op]
    out = [
        Piece((f"{{v}} = [x {op} {c} for x in {{v}}]",), f"{word} {c} to each element" if op != "*" else
              f"multiply each element by {c}", "list"),
        Piece((f"{{v}} = [x for x in {{v}} if x % {m} == {r}]",), f"keep elements equal to {r} mod {m}", "list"),
        Piece((f"{{v}} = [x for x in {{v}} if x > {t}]",), f"keep elements greater than {t}", "list"),
        Piece(("{v} = sorted({v})",), "sort it", "list"),
        Piece(("{v} = sorted({v}, reverse=True)",), "sort it in descending order", "list"),
        Piece(("{v} = {v}[::-1]",), "reverse it", "list"),
        Piece((f"{{v}} = {{v}}[{i}:]",), f"drop the first {i} elements", "list"),
        Piece(("{v} = [a + b for a, b in zip({v}, {v}[1:])]",), "sum adjacent pairs", "list"),
        Piece(
            ("total = 0", "out = []", "for x in {v}:", "    total += x", "    out.append(total)", "{v} = out"),
            "take running sums",
            "list",
        ),
        Piece(
            ("seen = []", "for x in {v}:", "    if x not in seen:", "        seen.append(x)", "{v} = seen"),
            "remove duplicates keeping the first occurrence",
            "list",
        ),
    ]
    if has_k:
        out += [
            Piece(("{v} = [x * {k} for x in {v}]",), "multiply each element by k", "list"),
            Piece(("{v} = {v}[{k}:] + {v}[:{k}]",), "rotate it left by k", "list"),
        ]
    return out


def _list_reducers(rng: random.Random, has_k: bool) -> list[Piece]:
    a = rng.randint(0, 5)
    m = rng.randint(2, 4)
    out = [
        Piece(("return {v}",), "return it", "list"),
        Piece((f"return {{v}} + [{a}]",), f"return it with {a} appended", "list"),
        Piece(("return {v}[-1]",), "return the last element", "int"),
        Piece(("return {v}[:2]",), "return the first two elements", "list"),
        Piece(("return sum({v})",), "return the sum", "int"),
        Piece(("return len({v})",), "return the length", "int"),
        Piece(("return max({v}) - min({v})",), "return max minus min", "int"),
        Piece(("return sum(x * x for x in {v})",), "return the sum of squares", "int"),
        Piece(
            (f"acc = {a}", "for x in {v}:", "    if x % 2 == 0:", "        acc += x", "    else:",
             "        acc -= 1", "return acc"),
            f"start at {a}, add even elements and subtract 1 for odd ones, return the result",
            "int",
        ),
        Piece(
            ("counts = {}", "for x in {v}:", f"    key = x % {m}", "    counts[key] = counts.get(key, 0) + 1",
             "return counts"),
            f"return a dict counting elements by their remainder mod {m}",
            "dict",
        ),
        Piece(("return {v}[0] if {v} else None",), "return the first element or None", "int"),
    ]
    if has_k:
        out.append(Piece(("return {v}.count({k})",), "return how many elements equal k", "int"))
    return out


def _int_transforms(rng: random.Random, has_k: bool) -> list[Piece]:
    a, b = rng.randint(2, 4), rng.randint(1, 9)
    m = rng.randint(3, 9)
    out = [
        Piece((f"{{v}} = {{v}} * {a} + {b}",), f"multiply by {a} and add {b}", "int"),
        Piece((f"{{v}} = {{v}} // {a}",), f"floor-divide by {a}", "int"),
        Piece((f"{{v}} = {{v}} % {m} + {b}",), f"take it mod {m} and add {b}", "int"),
        Piece((f"{{v}} = abs({{v}} - {b * 2})",), f"take the distance to {b * 2}", "int"),
        Piece(
            ("if {v} % 2 == 0:", "    {v} = {v} // 2", "else:", "    {v} = 3 * {v} + 1"),
            "do one Collatz step",
            "int",
        ),
    ]
    if has_k:
        out.append(Piece(("{v} = {v} * {k}",), "multiply by k", "int"))
    return out


def _int_reducers(rng: random.Random, has_k: bool) -> list[Piece]:
    m = rng.randint(3, 6)
    out = [
        Piece(("return {v}",), "return it", "int"),
        Piece(("return str({v})",), "return it as a string", "str"),
        Piece(("return [{v}, {v}]",), "return a list holding it twice", "list"),
        Piece((f"return {{v}} > {m * 3}",), f"return whether it is greater than {m * 3}", "bool"),
        Piece(("return {v} + 1",), "return it plus one", "int"),
        Piece(("total = 0", "for i in range({v}):", "    total += i", "return total"),
              "return the sum of 0..n-1", "int"),
        Piece(("return sum(int(d) for d in str(abs({v})))",), "return the sum of its digits", "int"),
        Piece((f"return [i * i for i in range({{v}} % {m})]",), f"return the squares below n mod {m}", "list"),
        Piece(("return str({v})[::-1]",), "return its digits reversed as a string", "str"),
        Piece(
            ("steps = 0", "while {v} != 1 and steps < 20:", "    {v} = {v} // 2 if {v} % 2 == 0 else 3 * {v} + 1",
             "    steps += 1", "return steps"),
            "return the number of Collatz steps to reach 1 (at most 20)",
            "int",
        ),
        Piece(("return {v} % 2 == 0",), "return whether it is even", "bool"),
    ]
    if has_k:
        out.append(Piece(("return {v} + {k}",), "return n plus k", "int"))
    return out


_TRANSFORMS = {"str": _str_transforms, "list": _list_transforms, "int": _int_transforms}
_REDUCERS = {"str": _str_reducers, "list": _list_reducers, "int": _int_reducers}


# ----------------------------------------------------------------------------------------------
# Programs and inputs.


def _fill(lines: tuple[str, ...], v: str, k: str) -> list[str]:
    return ["    " + line.replace("{v}", v).replace("{k}", k) for line in lines]


def sample_program(rng: random.Random, max_transforms: int = 2) -> Program:
    """Draw one program; ``max_transforms`` bounds the pipeline length (0 gives one-step programs)."""
    arg_type = rng.choice(ARG_TYPES)
    has_k = rng.random() < 0.25
    v = rng.choice(_NAMES[arg_type])
    k = "k"
    weights = TRANSFORM_WEIGHTS[: max_transforms + 1] + (TRANSFORM_WEIGHTS[-1],) * (max_transforms + 1 - len(TRANSFORM_WEIGHTS))
    n_transforms = rng.choices(range(max_transforms + 1), weights=weights)[0]
    transforms: list[Piece] = []
    for _ in range(n_transforms):
        choices = [p for p in _TRANSFORMS[arg_type](rng, has_k) if p not in transforms]
        transforms.append(rng.choice(choices))
    reducer = rng.choice(_REDUCERS[arg_type](rng, has_k))
    params = f"{v}, {k}" if has_k else v
    body: list[str] = []
    traces: list[str] = []
    for i, piece in enumerate(transforms):
        body += _fill(piece.lines, v, k)
        traces.append("\n".join([f"def _t{i}({params}):", *body, f"    return {v}"]))
    body += _fill(reducer.lines, v, k)
    source = "\n".join([f"def f({params}):", *body])
    return Program(
        source=source,
        arg_type=arg_type,
        has_k=has_k,
        steps=tuple(p.desc for p in [*transforms, reducer]),
        trace_sources=tuple(traces),
        n_steps=len(transforms) + 1,
    )


def sample_input(rng: random.Random, program: Program) -> str:
    """An argument-list text for ``program`` (``"'abc', 2"``), as a test input would be written."""
    if program.arg_type == "str":
        if rng.random() < 0.5:
            first = repr(rng.choice(_WORDS))
        else:
            first = repr("".join(rng.choice(_LETTERS + "AEXY") for _ in range(rng.randint(1, 4))))
    elif program.arg_type == "list":
        first = repr([rng.randint(0, 9) for _ in range(rng.randint(1, 4))])
    else:
        first = repr(rng.randint(0, 15))
    return f"{first}, {rng.randint(0, 3)}" if program.has_k else first


def sample_programs(
    n: int, seed: int, split: str = "train", max_transforms: int = 2, allow_fewer: bool = False
) -> list[Program]:
    """``n`` distinct programs of one split, deterministic in ``seed``.

    Sampling stops after ``MAX_MISSES`` draws in a row that bring nothing new; that raises, or with
    ``allow_fewer`` returns what was found (how the small sets, e.g. all one-step programs, are
    enumerated).
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    rng = random.Random(f"azr-embedded-grammar/{split}/{seed}")
    seen: set[str] = set()
    out: list[Program] = []
    misses = 0
    while len(out) < n:
        p = sample_program(rng, max_transforms=max_transforms)
        if p.source in seen or p.split != split:
            misses += 1
            if misses > MAX_MISSES:
                if allow_fewer:
                    break
                raise RuntimeError(f"grammar ran out of distinct {split} programs after {len(out)} of {n}")
            continue
        misses = 0
        seen.add(p.source)
        out.append(p)
    return out
