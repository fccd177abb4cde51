"""Dedup on the normalised AST: renamings, comments, docstrings and formatting are one task."""

from __future__ import annotations

import ast

import pytest
from buffer_helpers import make_task

from azr.buffer.dedup import canonical_input, dedup_key, normalize_program
from azr.buffer.store import TaskBuffer

BASE = '''
def helper(values, scale=2):
    total = 0
    for v in values:
        total += v * scale
    return total

def f(xs, k):
    result = helper(xs, scale=k)
    return [result, sorted(xs, key=lambda x: -x)]
'''

SAME_PROGRAMS = {
    "renamed locals, args and functions": '''
def combine(items, factor=2):
    acc = 0
    for item in items:
        acc += item * factor
    return acc

def f(data, m):
    out = combine(data, factor=m)
    return [out, sorted(data, key=lambda y: -y)]
''',
    "comments and docstrings": '''
def helper(values, scale=2):
    """Sum of scaled values."""
    total = 0  # running sum
    for v in values:
        # scale each value
        total += v * scale
    return total

def f(xs, k):
    """The entry point."""
    result = helper(xs, scale=k)
    return [result, sorted(xs, key=lambda x: -x)]
''',
    "formatting and annotations": '''
def helper(values: list, scale: int = 2) -> int:
    total=0
    for v in values: total += v*scale
    return (total)
def f(xs, k) -> list:
    result: int = helper(xs, scale = k)
    return [ result,
             sorted(xs, key = lambda x : -x) ]
''',
}

DIFFERENT_PROGRAMS = {
    "other operator": BASE.replace("v * scale", "v + scale"),
    "other constant": BASE.replace("total = 0", "total = 1"),
    "other builtin": BASE.replace("sorted(", "reversed("),
    "swapped argument use": BASE.replace("helper(xs, scale=k)", "helper(k, scale=xs)"),
}


@pytest.mark.parametrize("variant", sorted(SAME_PROGRAMS))
def test_rewritten_program_is_a_duplicate(variant: str, buffer: TaskBuffer) -> None:
    first = buffer.insert(make_task(BASE, ["[1, 2, 3], 2"], ["[12, [3, 2, 1]]"]))
    assert first.status == "added"
    again = buffer.insert(make_task(SAME_PROGRAMS[variant], ["[1, 2, 3], 2"], ["[12, [3, 2, 1]]"]))
    assert again.status == "duplicate" and again.id == first.id
    assert len(buffer) == 1


@pytest.mark.parametrize("variant", sorted(DIFFERENT_PROGRAMS))
def test_different_program_is_new(variant: str) -> None:
    assert normalize_program(DIFFERENT_PROGRAMS[variant]) != normalize_program(BASE)


def test_input_formatting_is_canonical_but_values_matter(buffer: TaskBuffer) -> None:
    assert buffer.insert(make_task(inputs=["[1,2] , 'a'"])).status == "added"
    assert buffer.insert(make_task(inputs=['[1, 2], "a"'])).status == "duplicate"
    assert buffer.insert(make_task(inputs=["[1, 2], 'b'"])).status == "added"
    assert buffer.insert(make_task(inputs=["{2, 1}, 'a'"])).status == "added"
    assert buffer.insert(make_task(inputs=["{1, 2}, 'a'"])).status == "duplicate"
    assert len(buffer) == 3


def test_different_input_is_a_new_task(buffer: TaskBuffer) -> None:
    assert buffer.insert(make_task(inputs=["3"])).status == "added"
    assert buffer.insert(make_task(inputs=["4"], outputs=["8"])).status == "added"
    assert buffer.insert(make_task(inputs=["3.0"], outputs=["6.0"])).status == "added"  # 3 and 3.0 differ
    assert len(buffer) == 3


def test_same_program_and_input_of_another_type_is_a_new_task(buffer: TaskBuffer) -> None:
    assert buffer.insert(make_task(type_="deduction")).status == "added"
    assert buffer.insert(make_task(type_="abduction")).status == "added"
    assert buffer.insert(make_task(type_="abduction")).status == "duplicate"


def test_duplicate_stores_nothing_new_and_is_counted(buffer: TaskBuffer) -> None:
    buffer.insert(make_task(message="first"))
    before = buffer.connection.execute("SELECT * FROM tasks").fetchall()
    result = buffer.insert(make_task("def f(b):\n    # doubled\n    return b * 2", message="second", step=7))
    assert result.status == "duplicate"
    assert buffer.connection.execute("SELECT * FROM tasks").fetchall() == before
    logged = buffer.connection.execute("SELECT step, reason, count FROM rejections").fetchall()
    assert logged == [(7, "duplicate", 1)]


def test_duplicates_within_one_batch(buffer: TaskBuffer) -> None:
    results = buffer.insert_many([make_task(), make_task("def f(z):\n    return z * 2"), make_task(inputs=["5"])])
    assert [r.status for r in results] == ["added", "duplicate", "added"]
    assert results[1].id == results[0].id


def test_induction_key_covers_all_inputs_in_order() -> None:
    prog = "def f(a):\n    return a"
    base = dedup_key("induction", prog, ["1", "2", "3"])
    assert dedup_key("induction", "def f(q):\n    return q", ["1", "2", "3"]) == base
    assert dedup_key("induction", prog, ["1", "2", "4"]) != base
    assert dedup_key("induction", prog, ["2", "1", "3"]) != base


def test_scoping_is_respected() -> None:
    # A local that shadows a global is a different program from one that uses the global.
    uses_global = "N = 3\ndef f(a):\n    return a + N"
    shadows = "N = 3\ndef f(a):\n    N = 4\n    return a + N"
    assert normalize_program(uses_global) != normalize_program(shadows)
    # Imported modules and attributes keep their names.
    assert "math.sqrt" in normalize_program("import math\ndef f(a):\n    return math.sqrt(a)")
    assert ".count" in normalize_program("class C:\n    def m(self):\n        return self.count\ndef f(a):\n    return a")


def test_canonical_input_and_unparsable_text() -> None:
    assert canonical_input("a=[1,2], b=(3,)") == "a=[1, 2], b=(3,)"
    assert canonical_input("0) or (1") == "0) or (1"
    assert normalize_program("def f(:\n  return") == "def f(:\n  return"


def test_dropping_strings_keeps_blocks_well_formed() -> None:
    text = normalize_program('def f(a):\n    if a:\n        "only a string"\n    try:\n        pass\n    except ValueError:\n        "x"\n    return a')
    ast.parse(text)  # still a program: emptied blocks got a `pass`
    assert normalize_program("def f(a):\n    if a:\n        pass\n    try:\n        pass\n    except ValueError:\n        pass\n    return a") == text
