"""The Python API contract other parts of the project rely on."""

from __future__ import annotations

import pytest

from sandbox import Job, Sandbox, SandboxError, Value


@pytest.fixture(scope="module")
def sb():
    with Sandbox(workers=2, timeout_s=5.0, memory_mb=512) as box:
        yield box


def test_issue_example(sb):
    out = sb.evaluate("def f(a):\n    return a * 2", ["f(3)", "6"])
    assert out.status == "ok" and out.error is None and out.duration_s > 0
    assert out.values[0] == out.values[1] == Value.from_python(6)


def test_error_names_exception(sb):
    out = sb.evaluate("def f(a):\n    return a[5]", ["f([])"])
    assert out.status == "error" and out.error.startswith("IndexError:")
    assert sb.evaluate("1/0").error.startswith("ZeroDivisionError")
    assert sb.evaluate("def f(:", ["1"]).error.startswith("SyntaxError")


def test_evaluate_many_keeps_input_order(sb):
    jobs = [(f"import time\ntime.sleep({0.02 * (i % 3)})\nx = {i}", ["x"]) for i in range(40)]
    outs = sb.evaluate_many(jobs)
    assert [o.values[0].to_python() for o in outs] == list(range(40))
    assert {o.worker for o in outs} == {0, 1}


def test_values_are_canonical(sb):
    out = sb.evaluate("", ["{3, 1, 2}", "{'b': 1, 'a': 2}", "float('nan')", "(1,)", "b'\\x00'", "1+2j"])
    assert [v.text for v in out.values] == [
        "{1, 2, 3}", "{'a': 2, 'b': 1}", "float('nan')", "(1,)", "b'\\x00'", "complex(1.0, 2.0)"]
    assert out.values[2] == Value.from_python(float("nan"))
    assert Value.from_python(6) != Value.from_python(6.0)


def test_opaque_values_never_compare_equal(sb):
    out = sb.evaluate("class A:\n    def __eq__(self, o):\n        return True\na = A()", ["a", "a"])
    assert out.status == "ok" and out.values[0].opaque and out.values[0].type_name == "A"
    assert out.values[0] != out.values[1] and out.values[0] != Value.from_python(1)


def test_job_compiles_without_the_sandbox_future_imports(sb):
    # sandbox code uses ``from __future__ import annotations``; a job must not inherit it
    out = sb.evaluate("def f(x: int) -> int:\n    return x", ["f.__annotations__['x'] is int", "(lambda y: y)(1)"])
    assert out.status == "ok" and out.values == [Value.from_python(True), Value.from_python(1)]
    mode = sb.evaluate_many([Job("def g(a: int): pass\nprint(g.__annotations__)", (), mode="main", capture_output=True)])
    assert mode[0].stdout == "{'a': <class 'int'>}\n"


def test_main_mode_and_output_capture(sb):
    out = sb.evaluate_many([Job("print('hi')\nif __name__ == '__main__':\n    print('main')", (), mode="main",
                                capture_output=True)])[0]
    assert out.status == "ok" and out.stdout == "hi\nmain\n"


def test_bad_arguments():
    with pytest.raises(ValueError):
        Sandbox(workers=0)
    with Sandbox(workers=1) as box, pytest.raises(TypeError):
        box.evaluate(b"x = 1")  # type: ignore[arg-type]
    with pytest.raises(SandboxError):
        box.evaluate("x = 1")
