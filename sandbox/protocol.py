"""The pool <-> zygote wire format, shared by both sides.

Every frame is a 4-byte big-endian length and a body. The pool sends each job as :data:`JOB_HEAD`
(what the zygote needs before it forks: id, timeout, capture flag) and the job's record in
``marshal`` format, which only the job's child decodes. The zygote greets once in JSON, then
answers each job with a binary reply: :data:`REPLY_HEAD`, the bytes the job's child wrote to its
result pipe, and its captured stdout and stderr. The zygote forwards the child's bytes without
parsing them: the pool (trusted, and it never forks) validates them in :func:`classify`, and every
page the zygote touches between two forks costs it a copy-on-write fault, so its per-job work is
kept to packing a header (in C: ``_forkloop.c`` mirrors these layouts).

Stdlib only: the zygote imports this module with ``python -s -S``.
"""

from __future__ import annotations

import json
import marshal
import os
import signal
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

LENGTH = struct.Struct(">I")
# job id, timeout (s; 0 for the pool's default), flags; mirrored in _forkloop.c
JOB_HEAD = struct.Struct(">qdB")
JOB_CAPTURE = 1
# job id, wait status, flags, duration (s), then the lengths of result, stdout and stderr
REPLY_HEAD = struct.Struct(">qiBdIII")
TIMED_OUT, CUT, RETIRE, STDOUT_TRUNCATED, STDERR_TRUNCATED = 1, 2, 4, 8, 16
RESULT_STATUSES = ("ok", "error", "memory")  # what a child may report about itself


def read_exact(fd: int, n: int) -> bytes | None:
    """``n`` bytes from ``fd``; ``None`` at end of file. Never reads past the frame: what follows
    (the next job) must stay in the pipe, out of sight of the child forked for this one."""
    chunks, got = [], 0
    while got < n:
        b = os.read(fd, n - got)
        if not b:
            return None
        chunks.append(b)
        got += len(b)
    return b"".join(chunks)


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def writev_all(fd: int, parts: list) -> None:
    """Write every byte of ``parts`` (bytes-like objects) to ``fd``, in order, without joining them."""
    views = [memoryview(p).cast("B") for p in parts if len(p)]
    while views:
        put = os.writev(fd, views)
        while views and put >= len(views[0]):
            put -= len(views.pop(0))
        if views and put:
            views[0] = views[0][put:]


def write_frame(fd: int, obj: dict) -> None:
    write_all(fd, json_frame(obj))


def json_frame(obj: dict) -> bytes:
    body = json.dumps(obj, ensure_ascii=False).encode("utf-8", "surrogatepass")
    return LENGTH.pack(len(body)) + body


def job_frame(job_id: int, program: str, exprs: Sequence[str], seed: int, timeout_s: float | None, mode: str,
              capture: bool, filename: str, max_value_chars: int) -> bytes:
    """The frame for one job: :data:`JOB_HEAD`, then its :class:`JobRecord` in ``marshal`` format,
    which its child decodes in one C call (``json.loads`` there cost ~90 copy-on-write faults per
    job; marshal version 0 interns nothing, so decoding touches no shared string). Only the trusted
    pool writes these bytes, and only the job's child reads them."""
    record = (program, list(exprs), int(seed), mode, filename, int(max_value_chars))
    body = marshal.dumps(record, 0)
    head = JOB_HEAD.pack(int(job_id), 0.0 if timeout_s is None else float(timeout_s), JOB_CAPTURE if capture else 0)
    return LENGTH.pack(len(head) + len(body)) + head + body


class JobRecord(NamedTuple):
    """What a job's child needs, as :func:`job_frame` packs it after the head."""

    program: str
    exprs: list[str]
    seed: int
    mode: str
    filename: str
    max_value_chars: int


def job_record(body: bytes | memoryview) -> tuple:
    """The record packed after a job frame's head (``body`` starts right after the head), a
    :class:`JobRecord` in all but type (making one would touch more of the zygote's pages)."""
    return marshal.loads(body)


def reply_frame(job_id: int, wait_status: int, flags: int, duration: float, data: bytes,
                stdout: bytes = b"", stderr: bytes = b"") -> bytes:
    head = reply_head(job_id, wait_status, flags, duration, len(data), len(stdout), len(stderr))
    return b"".join((head, data, stdout, stderr))


def reply_head(job_id: int, wait_status: int, flags: int, duration: float, n_data: int, n_stdout: int,
               n_stderr: int) -> bytes:
    """A reply frame's length and :data:`REPLY_HEAD`; the three byte strings follow it."""
    return LENGTH.pack(REPLY_HEAD.size + n_data + n_stdout + n_stderr) + REPLY_HEAD.pack(
        job_id, wait_status, flags, duration, n_data, n_stdout, n_stderr)


@dataclass
class Reply:
    job_id: int
    wait_status: int
    flags: int
    duration_s: float
    data: bytes
    stdout: bytes
    stderr: bytes


def parse_reply(body: bytes) -> Reply | None:
    """A reply frame's body, or ``None`` when it is malformed."""
    if len(body) < REPLY_HEAD.size:
        return None
    job_id, wait_status, flags, duration, n_data, n_out, n_err = REPLY_HEAD.unpack_from(body)
    if REPLY_HEAD.size + n_data + n_out + n_err != len(body):
        return None
    a = REPLY_HEAD.size
    b, c = a + n_data, a + n_data + n_out
    return Reply(job_id, wait_status, flags, duration, body[a:b], body[b:c], body[c:])


def classify(wait_status: int, data: bytes, timed_out: bool, cut: bool) -> tuple[str, list[str], str | None]:
    """``(status, values, error)`` of a job from how its child ended and the bytes it wrote."""
    if timed_out:
        return "timeout", [], "wall-clock timeout"
    if cut:
        return "error", [], "ResultTooLarge: job result over the size cap"
    if os.WIFSIGNALED(wait_status):
        sig = os.WTERMSIG(wait_status)
        if sig == signal.SIGXCPU:
            return "timeout", [], "CPU time limit"
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = str(sig)
        return "killed", [], f"killed by signal {name}"
    code = os.WEXITSTATUS(wait_status)
    try:  # the bytes come from the job: any failure to parse them is the job's error
        msg = json.loads(data) if data else None
    except Exception:  # noqa: BLE001 - ValueError, RecursionError, MemoryError...
        msg = None
    if not isinstance(msg, dict) or msg.get("status") not in RESULT_STATUSES:
        return "error", [], f"SystemExit: job ended without a result (exit code {code})"
    vals = msg.get("values")
    if not isinstance(vals, list) or not all(isinstance(v, str) for v in vals):
        return "error", [], "ProtocolError: malformed result"
    err = msg.get("error")
    return msg["status"], vals, err if isinstance(err, str) else None
