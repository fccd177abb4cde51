"""Attacks through the result channel: hostile objects returned as values, exit hooks and
finalisers that try to rewrite the verdict, and forged JSON frames written to stdout or to every
other descriptor. The parent must only ever see canonical literal text, run none of the job's
code, and keep the job's real verdict."""

from __future__ import annotations

import os

import pytest

from sandbox import Value, parse_literal
from tests.sandbox.conftest import run, same_worker, val

STATUSES = ("ok", "error", "timeout", "memory", "killed")
FORGED = '{"status": "ok", "values": ["666", "666", "666"], "error": null}'


@pytest.fixture()
def parent_marker(tmp_path, monkeypatch):
    """A file in the TEST process's cwd that any job method running in the parent would create."""
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "ran-in-parent"
    yield str(path)
    assert not path.exists(), f"job code ran in the parent: {path.read_text()!r}"
    assert os.listdir(tmp_path) == []


def _hostile_classes(marker: str) -> str:
    return f"""
import os, collections
M = {marker!r}
def touch(why):
    for path in (M, os.path.basename(M)):  # absolute, and relative to whatever cwd runs this
        try:
            with open(path, 'a') as fh:
                fh.write(why + ' ')
        except OSError:
            pass
class Evil:
    def __eq__(self, other): touch('eq'); return True
    def __ne__(self, other): touch('ne'); return False
    def __lt__(self, other): touch('lt'); return True
    def __hash__(self): touch('hash'); return 0
    def __repr__(self): touch('repr'); return '6'
    def __str__(self): touch('str'); return '6'
    def __format__(self, spec): touch('format'); return '6'
    def __reduce__(self): return (os.system, ('touch ' + M,))
    def __reduce_ex__(self, proto): return self.__reduce__()
    def __getstate__(self): touch('getstate'); return {{}}
    def __iter__(self): touch('iter'); return iter([6])
    def __len__(self): touch('len'); return 1
    def __bool__(self): touch('bool'); return True
    def __index__(self): touch('index'); return 6
    def __del__(self): touch('del')
class EvilInt(int):
    def __repr__(self): touch('int-repr'); return '6'
    def __eq__(self, other): touch('int-eq'); return True
    __hash__ = int.__hash__
class EvilStr(str):
    def __repr__(self): touch('str-repr'); return "'six'"
class EvilFloat(float):
    def __repr__(self): touch('float-repr'); return '6.0'
class EvilList(list):
    def __iter__(self): touch('list-iter'); return iter([6])
    def __repr__(self): touch('list-repr'); return '[6]'
class EvilDict(dict):
    def items(self): touch('dict-items'); return [(6, 6)]
    def __iter__(self): touch('dict-iter'); return iter([6])
class OrderedDict(dict):  # pretends to be the stdlib class the encoder accepts as a dict
    def items(self): touch('od-items'); return [(6, 6)]
    def keys(self): touch('od-keys'); return [6]
    def __iter__(self): touch('od-iter'); return iter([6])
OrderedDict.__module__ = 'collections'
class Meta(type):
    @property
    def __name__(cls): touch('name'); return 'Spoof'
    def __eq__(cls, other): touch('meta-eq'); return True
    __hash__ = type.__hash__
class Spoof(metaclass=Meta):
    pass
class EvilKey:
    def __hash__(self): touch('key-hash'); return 1
    def __eq__(self, other): touch('key-eq'); return True
"""


def test_hostile_objects_come_back_as_opaque_markers(sb, parent_marker):
    exprs = [
        "Evil()", "EvilInt(6)", "EvilStr('6')", "EvilFloat(6.0)", "EvilList([1])", "EvilDict(a=1)",
        "Spoof()", "Evil", "touch", "os", "[Evil(), 1]", "{'k': Evil()}", "(Evil(),)", "{EvilKey(), 1}",
        "{EvilKey(): 1}", "iter([])", "NotImplemented", "...", "memoryview(b'6')", "bytearray(b'6')", "range(6)",
    ]
    with same_worker(sb):
        res = run(sb, _hostile_classes(parent_marker), exprs)
        assert res.status == "ok", res.error
    six = Value.from_python(6)
    for expr, v in zip(exprs, res.values):
        assert v.opaque, f"{expr} came back as plain data: {v.text}"
        assert v != v and v != six and v != Value(v.text), expr
        assert "6" not in v.text.replace("<opaque:", ""), f"{expr}: the job's own repr leaked: {v.text}"
        with pytest.raises(ValueError):
            v.to_python()
        repr(v), str(v), hash(v)  # noqa: B018 - none of these may run job code


def test_a_spoofed_stdlib_dict_is_read_with_the_real_dict_methods(sb, parent_marker):
    with same_worker(sb):
        res = run(sb, _hostile_classes(parent_marker), ["OrderedDict(a=1)", "collections.OrderedDict(a=1)"])
    spoof, real = res.values
    assert spoof.opaque or spoof.to_python() == {"a": 1}, spoof.text  # never the overridden (6, 6)
    assert real.to_python() == {"a": 1}


def test_hostile_exceptions_give_a_plain_error(sb, parent_marker):
    prog = _hostile_classes(parent_marker) + """
class Boom(Exception):
    def __str__(self):
        touch('exc-str')
        raise Boom()
    def __repr__(self):
        touch('exc-repr')
        return 'x'
raise Boom()
"""
    with same_worker(sb):
        res = run(sb, prog)
    assert res.status == "error" and res.error.startswith("Boom"), res.error
    assert isinstance(res.error, str) and len(res.error) < 5000


def test_exception_with_a_huge_message_is_truncated(sb):
    with same_worker(sb):
        res = run(sb, "raise ValueError('z' * 10 ** 7)")
    assert res.status == "error" and len(res.error) < 10_000


# ----------------------------------------------------------------------------------------------
# exit hooks and finalisers


_FORGE = f"""
import os, sys
FORGED = {FORGED!r}
def forge():
    sys.stdout.write(FORGED)
    print(FORGED, file=sys.stderr)
    for fd in range(64):
        try:
            os.write(fd, FORGED.encode())
        except OSError:
            pass
"""


@pytest.mark.parametrize("mode", ["module", "main"])
def test_exit_hooks_and_finalisers_do_not_change_the_verdict(sb, mode):
    prog = _FORGE + """
import atexit, builtins, threading, weakref
atexit.register(forge)
class Forger:
    def __del__(self):
        forge()
keep = Forger()
builtins.azr_keep = Forger()  # lives until interpreter shutdown
weakref.finalize(keep, forge)
threading.Thread(target=lambda: threading.Event().wait(0.05) or forge(), daemon=True).start() if False else None
sys.exitfunc = forge
x = 1
"""
    with same_worker(sb):
        res = run(sb, prog, ["x", "2"], mode=mode, capture_output=True)
        assert res.status == "ok", res.error
        assert [v.text for v in res.values] == ["1", "2"]


def test_forged_frame_on_stdout_does_not_change_the_verdict(sb):
    prog = f"""
import json, os, struct, sys
body = {FORGED!r}.encode()
os.write(1, struct.pack('>I', len(body)) + body)
sys.stdout.write(body.decode() + '\\n')
os.write(2, struct.pack('>I', len(body)) + body)
x = 'real'
"""
    with same_worker(sb):
        res = run(sb, prog, ["x"], capture_output=True)
        assert res.status == "ok" and val(res) == "real"
        assert FORGED in res.stdout and FORGED in res.stderr


def test_forged_frames_on_every_descriptor_cannot_fake_an_ok_verdict(sb):
    prog = _FORGE + "forge()\nx = 'real'\n"
    with same_worker(sb):
        res = run(sb, prog, ["x", "1", "2"])
    assert res.status in STATUSES
    assert not (res.status == "ok" and [v.text for v in res.values] != ["'real'", "1", "2"]), res.values


def test_job_that_closes_or_garbles_its_result_pipe_gets_an_error(sb):
    prog = """
import os, stat
for fd in range(3, 64):
    try:
        if stat.S_ISFIFO(os.fstat(fd).st_mode):
            os.write(fd, b'{"status": "ok", "val')
            os.close(fd)
    except OSError:
        pass
x = 1
"""
    with same_worker(sb):
        res = run(sb, prog)
    assert res.status == "error" and res.values == []


def test_oversized_result_stream_is_cut(sb):
    prog = """
import os, stat
chunk = b' ' * (1 << 20)
for fd in range(3, 64):
    try:
        if stat.S_ISFIFO(os.fstat(fd).st_mode):
            for _ in range(80):
                os.write(fd, chunk)
    except OSError:
        pass
x = 1
"""
    with same_worker(sb):
        res = run(sb, prog, timeout_s=10)
    assert res.status in ("error", "killed") and res.values == []


def test_deeply_nested_result_bytes_do_not_kill_the_worker(fresh_sb):
    prog = """
import os, stat
for fd in range(3, 64):
    try:
        if stat.S_ISFIFO(os.fstat(fd).st_mode):
            os.write(fd, b'{"status": "ok", "values": ' + b'[' * 100000 + b']' * 100000 + b'}')
    except OSError:
        pass
os._exit(0)
"""
    with same_worker(fresh_sb):
        res = run(fresh_sb, prog, ["1"])
        assert res.status == "error", (res.status, res.error)


def test_values_of_a_forged_result_are_still_canonical_literals(sb):
    texts = ["__import__('os').system('id')", "6 ", "(6)", "[1,2]", "0x10", "1_000"]
    prog = f"""
import json, os, stat
frame = json.dumps({{'status': 'ok', 'values': {texts!r}, 'error': None}}).encode()
for fd in range(3, 64):
    try:
        if stat.S_ISFIFO(os.fstat(fd).st_mode):
            os.write(fd, frame)
    except OSError:
        pass
os._exit(0)
"""
    res = run(sb, prog, ["1"] * len(texts))
    assert res.status in STATUSES
    for v in res.values:
        if not v.opaque:
            assert Value.from_literal(v.text).text == v.text, f"non-canonical value text accepted: {v.text!r}"


# ----------------------------------------------------------------------------------------------
# the opaque marker inside plain strings


def test_a_string_that_looks_like_a_marker_is_plain_data(sb):
    res = run(sb, "x = '<opaque:Foo>'", ["x", "['<opaque:', 1]"])
    assert res.status == "ok"
    assert res.values[0] == Value.from_python("<opaque:Foo>")
    assert not res.values[1].opaque and res.values[1].to_python() == ["<opaque:", 1]
    assert parse_literal(res.values[0].text) == "<opaque:Foo>"


def test_type_name_of_nested_opaque_values_does_not_raise(sb):
    res = run(sb, "class Evil:\n    pass", ["[Evil(), 1]", "Evil()"])
    nested, top = res.values
    assert top.type_name == "Evil"
    assert isinstance(nested.type_name, str)
