"""The pool <-> zygote wire format: job frames, binary replies, and the pool-side verdict on the
bytes a job's child wrote (the integration batteries attack the same paths through real jobs)."""

from __future__ import annotations

import signal

import pytest

from sandbox import protocol

JOBS = [
    (3, "x = 1\n\u00e9\ud800 \"q\" \\ \x00 \u2028", ["f(1)", "'\\n'"], 7, None, "module", False, "<main>", 2000),
    (0, "", [], 0, 2.5, "main", True, 'a"b.py', 10),
    (1, "p", ("a",), 1, float("inf"), "module", False, "f", 5),
]


@pytest.mark.parametrize("job", JOBS)
def test_job_frame_round_trip(job):
    job_id, program, exprs, seed, timeout, mode, capture, filename, max_chars = job
    frame = protocol.job_frame(*job)
    assert protocol.LENGTH.unpack_from(frame)[0] == len(frame) - 4
    head = protocol.JOB_HEAD.unpack_from(frame, 4)
    assert head == (job_id, timeout or 0.0, protocol.JOB_CAPTURE if capture else 0)
    record = protocol.JobRecord(*protocol.job_record(frame[4 + protocol.JOB_HEAD.size:]))
    assert record == (program, list(exprs), seed, mode, filename, max_chars)
    assert record.program == program  # lone surrogates and NULs survive


def test_reply_round_trip_and_malformed_replies():
    frame = protocol.reply_frame(9, 0x100, protocol.RETIRE | protocol.STDERR_TRUNCATED, 0.25, b"{}", b"out", b"err")
    (n,) = protocol.LENGTH.unpack_from(frame)
    assert n == len(frame) - 4
    reply = protocol.parse_reply(frame[4:])
    assert reply == protocol.Reply(9, 0x100, protocol.RETIRE | protocol.STDERR_TRUNCATED, 0.25, b"{}", b"out", b"err")
    assert protocol.parse_reply(frame[4:-1]) is None  # lengths do not add up
    assert protocol.parse_reply(frame[4:] + b"x") is None
    assert protocol.parse_reply(b"short") is None


def exited(code: int) -> int:
    return code << 8


@pytest.mark.parametrize(("status", "data", "want"), [
    (exited(0), b'{"status": "ok", "values": ["1", "[2]"], "error": null}', ("ok", ["1", "[2]"], None)),
    (exited(0), b'{"status": "error", "values": [], "error": "ValueError: x"}', ("error", [], "ValueError: x")),
    (exited(0), b'{"status": "memory", "values": [], "error": 5}', ("memory", [], None)),
    (exited(0), b'{"status": "timeout", "values": []}', ("error", [], "SystemExit: job ended without a result (exit code 0)")),
    (exited(3), b"", ("error", [], "SystemExit: job ended without a result (exit code 3)")),
    (exited(0), b'{"status": "ok", "values": [1]}', ("error", [], "ProtocolError: malformed result")),
    (exited(0), b"[" * 100_000, ("error", [], "SystemExit: job ended without a result (exit code 0)")),
    (exited(0), b'{"status": "ok", "val', ("error", [], "SystemExit: job ended without a result (exit code 0)")),
    (signal.SIGSEGV, b'{"status": "ok", "values": ["1"], "error": null}', ("killed", [], "killed by signal SIGSEGV")),
    (signal.SIGXCPU, b"", ("timeout", [], "CPU time limit")),
    (40, b"", ("killed", [], "killed by signal 40")),  # no name in signal.Signals
])
def test_classify(status, data, want):
    assert protocol.classify(status, data, False, False) == want


def test_classify_timeout_and_cut_win_over_what_was_written():
    ok = b'{"status": "ok", "values": ["1"], "error": null}'
    assert protocol.classify(signal.SIGKILL, ok, True, False) == ("timeout", [], "wall-clock timeout")
    assert protocol.classify(signal.SIGKILL, ok, False, True)[2].startswith("ResultTooLarge")
