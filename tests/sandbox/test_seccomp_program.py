"""The seccomp programs' decisions for every syscall number, read off the assembled BPF by a small
interpreter (no kernel needed): the escape tests only try a handful of calls, this covers all."""

from __future__ import annotations

import struct

import pytest

from sandbox import isolation as iso

pytestmark = pytest.mark.skipif(iso.MACHINE not in iso._AUDIT_ARCH, reason="no seccomp tables for this arch")

ALLOW, EPERM, ENOSYS, KILL = iso._RET_ALLOW, iso._RET_ERRNO | iso.EPERM, iso._RET_ERRNO | iso.ENOSYS, iso._RET_KILL


def run_bpf(code: bytes, nr: int, arch: int | None = None, args: tuple[int, ...] = ()) -> int:
    """Evaluate a classic-BPF seccomp program on ``struct seccomp_data``."""
    arch = iso._AUDIT_ARCH[iso.MACHINE] if arch is None else arch
    data = struct.pack("=iIQ6Q", nr, arch, 0, *(list(args) + [0] * (6 - len(args))))
    insns = [struct.unpack_from("=HBBI", code, i) for i in range(0, len(code), 8)]
    a, pc = 0, 0
    for _ in range(len(insns) + 1):  # forward jumps only: at most one visit per instruction
        op, jt, jf, k = insns[pc]
        if op == iso._LD_ABS_W:
            a = struct.unpack_from("=I", data, k)[0]
            pc += 1
        elif op == iso._RET:
            return k
        else:
            taken = {iso._JEQ: a == k, iso._JGE: a >= k, iso._JSET: bool(a & k)}[op]
            pc += 1 + (jt if taken else jf)
    raise AssertionError("program did not return")


def expected(stage: str, nr: int, args: tuple[int, ...]) -> int:
    table = iso._DENIED[iso.MACHINE]
    process = {table[n] for n in table if n in iso._PROCESS_CALLS}
    other = {table[n] for n in table if n not in iso._PROCESS_CALLS}
    retune = set(iso._RETUNE[iso.MACHINE].values())
    arg0 = args[0] if args else 0
    low = arg0 & 0xFFFFFFFF  # int arguments: the kernel reads the low half only
    zygote_says = EPERM if nr in other or (nr == iso._SOCKET[iso.MACHINE] and low != iso.AF_UNIX) else ALLOW
    if nr in process or nr in retune:
        job_says = EPERM
    elif nr == iso._CLONE3:
        job_says = ENOSYS
    elif (nr == iso._CLONE[iso.MACHINE] and not low & iso.CLONE_THREAD) or (
            nr == iso._PRLIMIT64[iso.MACHINE] and arg0 != 0):  # prlimit: both halves of the pid must be 0
        job_says = EPERM
    else:
        job_says = ALLOW
    if stage == "zygote":
        return zygote_says
    if stage == "job":
        return job_says
    return zygote_says if zygote_says != ALLOW else job_says


ARGS = [(), (0,), (1,), (2,), (iso.CLONE_THREAD | 0x3D0F00,), (0x11,), (1 << 32,), (iso.CLONE_THREAD | 1 << 32,)]


@pytest.mark.parametrize("stage", ["zygote", "job", "all"])
def test_every_syscall_number_gets_the_intended_verdict(stage):
    code = iso.seccomp_program(stage)
    for nr in range(0, 600):
        for args in ARGS:
            assert run_bpf(code, nr, args=args) == expected(stage, nr, args), (stage, nr, args)


@pytest.mark.parametrize("stage", ["zygote", "all"])
def test_foreign_abis_are_killed(stage):
    code = iso.seccomp_program(stage)
    assert run_bpf(code, 0, arch=0x40000003) == KILL  # i386
    if iso.MACHINE == "x86_64":
        assert run_bpf(code, 0x40000000 + 1) == KILL  # x32


def test_job_stage_decides_in_few_steps():
    """The job stage is attached per job, and the kernel replays it for every syscall number: keep
    the longest path short (a binary search, not a chain of comparisons)."""
    code = iso.seccomp_program("job")
    insns = [struct.unpack_from("=HBBI", code, i) for i in range(0, len(code), 8)]

    def path(nr: int) -> int:
        pc = steps = 0
        while insns[pc][0] != iso._RET:
            op, jt, jf, k = insns[pc]
            steps += 1
            if op == iso._LD_ABS_W:
                pc += 1
            else:
                pc += 1 + (jt if (nr == k if op == iso._JEQ else nr >= k) else jf)
            if op == iso._JSET or (op == iso._LD_ABS_W and k != 0):  # argument checks: not replayed
                return steps
        return steps

    assert max(path(nr) for nr in range(0, 600)) <= 8
