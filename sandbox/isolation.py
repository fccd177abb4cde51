"""Kernel isolation layers, called through ctypes: namespaces, pivot_root, Landlock, seccomp.

Hand-written on purpose: no maintained Python library offers a prebuilt Landlock ruleset plus a
prebuilt seccomp filter that can be applied in a forked child in well under a millisecond (the
PyPI ``landlock`` binding costs ~15 ms per child, libseccomp bindings are not installable
everywhere). The kernel interfaces used here are small and stable.

Stdlib only: this module is imported by the zygote, which runs with ``python -s -S``.
"""

from __future__ import annotations

import ctypes
import os
import platform
import struct
from collections.abc import Callable

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.unshare.argtypes = [ctypes.c_int]

MACHINE = platform.machine()

# namespaces
CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
CLONE_NEWPID = 0x20000000
CLONE_THREAD = 0x00010000

# mount flags
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MNT_DETACH = 2

# prctl
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_SECCOMP = 22
PR_SET_NO_NEW_PRIVS = 38
SECCOMP_MODE_FILTER = 2

SYSCALLS = {
    "x86_64": {
        "prctl": 157, "pivot_root": 155, "landlock_create_ruleset": 444, "landlock_add_rule": 445,
        "landlock_restrict_self": 446,
    },
    "aarch64": {
        "prctl": 167, "pivot_root": 41, "landlock_create_ruleset": 444, "landlock_add_rule": 445,
        "landlock_restrict_self": 446,
    },
}


class IsolationError(OSError):
    pass


def _check(ret: int, what: str) -> int:
    if ret < 0:
        err = ctypes.get_errno()
        raise IsolationError(err, f"{what}: {os.strerror(err)}")
    return ret


def _nr(name: str) -> int:
    try:
        return SYSCALLS[MACHINE][name]
    except KeyError:
        raise IsolationError(0, f"{name}: unsupported architecture {MACHINE}") from None


# One untyped ``syscall`` entry point for calls made in a freshly forked job: converting arguments
# through ``argtypes`` there touches (and so copies) dozens of the zygote's pages, ~100 us a call.
_raw_syscall = ctypes.CDLL(None, use_errno=True).syscall
_raw_syscall.restype = ctypes.c_long


class PreparedCall:
    """A system call whose ctypes arguments (``c_long``: what ``syscall(2)`` takes) are built once
    in the zygote and issued in each child through :data:`_raw_syscall`."""

    def __init__(self, what: str, name: str, *args: int) -> None:
        self.what = what
        self.args = tuple(ctypes.c_long(a) for a in (_nr(name), *args))

    def __call__(self) -> None:
        if _raw_syscall(*self.args) < 0:
            err = ctypes.get_errno()
            raise IsolationError(err, f"{self.what}: {os.strerror(err)}")


def prctl(option: int, a2: int = 0, a3: int = 0, a4: int = 0, a5: int = 0) -> int:
    return _check(_libc.prctl(option, a2, a3, a4, a5), f"prctl({option})")


def prctl_call(option: int, arg: int) -> Callable[[], object]:
    """``prctl(option, arg)`` prepared for a child (a plain call where the syscall number is unknown)."""
    try:
        return PreparedCall(f"prctl({option})", "prctl", option, arg, 0, 0, 0)
    except IsolationError:
        return lambda: prctl(option, arg)


def unshare(flags: int) -> None:
    _check(_libc.unshare(flags), "unshare")


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    def enc(s: str | None) -> bytes | None:
        return s.encode() if s is not None else None

    _check(_libc.mount(enc(source), enc(target), enc(fstype), flags, enc(data)), f"mount {target}")


def umount2(target: str, flags: int) -> None:
    _check(_libc.umount2(target.encode(), flags), f"umount {target}")


def pivot_root(new_root: str, put_old: str) -> None:
    _check(_libc.syscall(_nr("pivot_root"), new_root.encode(), put_old.encode()), "pivot_root")


# ----------------------------------------------------------------------------------------------
# Filesystem view: a minimal root with read-only binds and a size-capped private scratch.


def build_minimal_root(ro_paths: list[str], scratch_mb: int, scratch_uid: int) -> None:
    """Enter a private mount namespace whose root holds only ``ro_paths`` (read-only), ``/dev/null``,
    ``/dev/zero``, ``/dev/urandom`` and a private ``/tmp`` tmpfs of ``scratch_mb`` MiB.

    Must be called after ``unshare(CLONE_NEWNS)``. Host files outside ``ro_paths`` (``/etc``,
    ``/home``, ``/proc``, the project checkout) do not exist in the new view.
    """
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    candidates = ["/tmp", "/mnt", "/media", "/srv", "/opt"]
    base = next(
        (c for c in candidates if os.path.isdir(c) and not any(p == c or p.startswith(c + "/") for p in ro_paths)),
        None,
    )
    if base is None:
        raise IsolationError(0, "no mount point for the new root")
    mount("tmpfs", base, "tmpfs", MS_NOSUID | MS_NODEV, "size=16m,mode=0755")
    for path in ro_paths:
        target = base + path
        os.makedirs(target, exist_ok=True)
        mount(path, target, None, MS_BIND | MS_REC)
        mount(None, target, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
    os.makedirs(base + "/dev", exist_ok=True)
    for dev in ("null", "zero", "urandom"):
        node = f"{base}/dev/{dev}"
        with open(node, "w"):
            pass
        mount(f"/dev/{dev}", node, None, MS_BIND)
    os.makedirs(base + "/tmp", exist_ok=True)
    # nr_inodes: empty files cost no size but kernel memory; cap them too.
    mount("tmpfs", base + "/tmp", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
          f"size={scratch_mb}m,nr_inodes=4096,mode=0700")
    os.chown(base + "/tmp", scratch_uid, scratch_uid)
    os.makedirs(base + "/.oldroot", exist_ok=True)
    pivot_root(base, base + "/.oldroot")
    os.chdir("/")
    umount2("/.oldroot", MNT_DETACH)
    os.rmdir("/.oldroot")
    mount(None, "/", None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_BIND)


def enter_user_namespace(extra_flags: int) -> None:
    """Unprivileged path: a user namespace in which we are root, plus the other namespaces."""
    uid, gid = os.getuid(), os.getgid()
    unshare(CLONE_NEWUSER | extra_flags)
    with open("/proc/self/setgroups", "w") as fh:
        fh.write("deny")
    with open("/proc/self/uid_map", "w") as fh:
        fh.write(f"0 {uid} 1")
    with open("/proc/self/gid_map", "w") as fh:
        fh.write(f"0 {gid} 1")


# ----------------------------------------------------------------------------------------------
# Landlock: a filesystem allowlist, TCP denial (ABI >= 4) and signal/abstract-socket scoping
# (ABI >= 6). The ruleset is built once in the zygote; each child only calls restrict_self.

_FS_ACCESS_BY_ABI = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 5: (1 << 16) - 1}
READ_ACCESS = (1 << 0) | (1 << 2) | (1 << 3)  # execute, read file, read dir
ACCESS_NET_BIND_TCP = 1
ACCESS_NET_CONNECT_TCP = 2
SCOPE_ABSTRACT_UNIX_SOCKET = 1
SCOPE_SIGNAL = 2


def landlock_abi() -> int:
    try:
        ret = _libc.syscall(_nr("landlock_create_ruleset"), None, 0, 1)  # LANDLOCK_CREATE_RULESET_VERSION
    except IsolationError:
        return 0
    return int(ret) if ret > 0 else 0


def _fs_mask(abi: int) -> int:
    return _FS_ACCESS_BY_ABI[max(k for k in _FS_ACCESS_BY_ABI if k <= abi)]


def landlock_ruleset(read_paths: list[str], write_paths: list[str], abi: int) -> int:
    """Create a ruleset fd: read beneath ``read_paths``, full access beneath ``write_paths``,
    no TCP bind/connect, no signals or abstract sockets outside the domain."""
    fs_all = _fs_mask(abi)
    if abi >= 6:
        attr = struct.pack("QQQ", fs_all, ACCESS_NET_BIND_TCP | ACCESS_NET_CONNECT_TCP,
                           SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL)
    elif abi >= 4:
        attr = struct.pack("QQ", fs_all, ACCESS_NET_BIND_TCP | ACCESS_NET_CONNECT_TCP)
    else:
        attr = struct.pack("Q", fs_all)
    buf = ctypes.create_string_buffer(attr, len(attr))
    fd = _check(int(_libc.syscall(_nr("landlock_create_ruleset"), buf, len(attr), 0)), "landlock_create_ruleset")
    for paths, access in ((read_paths, READ_ACCESS), (write_paths, fs_all)):
        for path in paths:
            pfd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            try:
                rule = ctypes.create_string_buffer(struct.pack("=Qi", access & fs_all, pfd), 12)
                _check(int(_libc.syscall(_nr("landlock_add_rule"), fd, 1, rule, 0)), f"landlock_add_rule {path}")
            finally:
                os.close(pfd)
    return fd


def landlock_restrict_call(ruleset_fd: int) -> PreparedCall:
    """``landlock_restrict_self(ruleset_fd, 0)`` prepared for a child (see :class:`PreparedCall`)."""
    return PreparedCall("landlock_restrict_self", "landlock_restrict_self", ruleset_fd, 0)


# ----------------------------------------------------------------------------------------------
# seccomp-BPF: default allow, deny process creation (threads stay allowed), exec, non-UNIX
# sockets, ptrace, signals to other processes and kernel attack surface.

_AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
_DENIED = {
    "x86_64": {
        "execve": 59, "execveat": 322, "fork": 57, "vfork": 58, "ptrace": 101,
        "process_vm_readv": 310, "process_vm_writev": 311, "kill": 62, "tkill": 200, "tgkill": 234,
        "rt_sigqueueinfo": 129, "rt_tgsigqueueinfo": 297, "pidfd_send_signal": 424, "pidfd_getfd": 438,
        "pidfd_open": 434, "setsid": 112, "setpgid": 109, "unshare": 272, "setns": 308, "mount": 165,
        "umount2": 166, "pivot_root": 155, "chroot": 161, "bpf": 321, "perf_event_open": 298,
        "userfaultfd": 323, "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
        "keyctl": 250, "add_key": 248, "request_key": 249, "name_to_handle_at": 303,
        "open_by_handle_at": 304, "personality": 135, "kexec_load": 246, "kexec_file_load": 320,
        "init_module": 175, "finit_module": 313, "delete_module": 176, "reboot": 169, "swapon": 167,
        "swapoff": 168, "settimeofday": 164, "clock_settime": 227, "adjtimex": 159, "clock_adjtime": 305,
        "acct": 163, "quotactl": 179, "syslog": 103, "iopl": 172, "ioperm": 173, "sethostname": 170,
        "setdomainname": 171, "mknod": 133, "mknodat": 259, "fanotify_init": 300, "move_mount": 429,
        "open_tree": 428, "fsopen": 430, "fsmount": 432, "mount_setattr": 442,
        # SysV IPC objects outlive a job inside the worker's IPC namespace (state leaks, pinned memory)
        "shmget": 29, "shmat": 30, "shmctl": 31, "shmdt": 67, "semget": 64, "semop": 65, "semctl": 66,
        "semtimedop": 220, "msgget": 68, "msgsnd": 69, "msgrcv": 70, "msgctl": 71,
    },
    "aarch64": {
        "execve": 221, "execveat": 281, "ptrace": 117, "process_vm_readv": 270, "process_vm_writev": 271,
        "kill": 129, "tkill": 130, "tgkill": 131, "rt_sigqueueinfo": 138, "rt_tgsigqueueinfo": 240,
        "pidfd_send_signal": 424, "pidfd_getfd": 438, "pidfd_open": 434, "setsid": 157, "setpgid": 154,
        "unshare": 97, "setns": 268, "mount": 40, "umount2": 39, "pivot_root": 41, "chroot": 51, "bpf": 280,
        "perf_event_open": 241, "userfaultfd": 282, "io_uring_setup": 425, "io_uring_enter": 426,
        "io_uring_register": 427, "keyctl": 219, "add_key": 217, "request_key": 218,
        "name_to_handle_at": 264, "open_by_handle_at": 265, "personality": 92, "kexec_load": 104,
        "kexec_file_load": 294, "init_module": 105, "finit_module": 273, "delete_module": 106,
        "reboot": 142, "swapon": 224, "swapoff": 225, "settimeofday": 170, "clock_settime": 112,
        "adjtimex": 171, "clock_adjtime": 266, "acct": 89, "quotactl": 60, "syslog": 116,
        "sethostname": 161, "setdomainname": 162, "mknodat": 33, "fanotify_init": 262, "move_mount": 429,
        "open_tree": 428, "fsopen": 430, "fsmount": 432, "mount_setattr": 442,
        "shmget": 194, "shmctl": 195, "shmat": 196, "shmdt": 197, "semget": 190, "semctl": 191,
        "semtimedop": 192, "semop": 193, "msgget": 186, "msgctl": 187, "msgrcv": 188, "msgsnd": 189,
    },
}
# Calls that retune a process by pid: denied to jobs (prlimit64 is allowed on pid 0, i.e. itself,
# since setrlimit goes through it). Without this a job could change limits, priority or CPU
# placement of its zygote or of any other process that shares its uid.
_RETUNE = {
    "x86_64": {"setpriority": 141, "sched_setparam": 142, "sched_setscheduler": 144, "sched_setaffinity": 203,
               "sched_setattr": 314, "ioprio_set": 251},
    "aarch64": {"setpriority": 140, "sched_setparam": 118, "sched_setscheduler": 119, "sched_setaffinity": 122,
                "sched_setattr": 274, "ioprio_set": 30},
}
_PRLIMIT64 = {"x86_64": 302, "aarch64": 261}
_CLONE = {"x86_64": 56, "aarch64": 220}
_CLONE3 = 435
_SOCKET = {"x86_64": 41, "aarch64": 198}
AF_UNIX = 1
EPERM, ENOSYS = 1, 38

_LD_ABS_W, _JEQ, _JGE, _JSET, _RET = 0x20, 0x15, 0x35, 0x45, 0x06
_RET_ALLOW, _RET_KILL = 0x7FFF0000, 0x80000000
_RET_ERRNO = 0x00050000


# Process management stays allowed for the zygote (it forks and kills its children) and is denied
# to jobs by a second, small filter loaded in each child: filters stack, the strictest answer wins.
_PROCESS_CALLS = {"fork", "vfork", "kill", "tkill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo",
                  "pidfd_send_signal", "pidfd_open", "pidfd_getfd", "setsid", "setpgid"}


def _assemble(prog: list[tuple[int, object, object, int]], labels: dict[str, int]) -> bytes:
    def off(i: int, target: object) -> int:
        if isinstance(target, int):
            return target
        delta = labels[target] - (i + 1)  # type: ignore[index]
        if not 0 <= delta <= 255:
            raise IsolationError(0, "seccomp program too long")
        return delta

    return b"".join(struct.pack("=HBBI", code, off(i, jt), off(i, jf), k)
                    for i, (code, jt, jf, k) in enumerate(prog))


def _tail(prog: list, labels: dict[str, int]) -> None:
    for name, ret in (("allow", _RET_ALLOW), ("eperm", _RET_ERRNO | EPERM),
                      ("enosys", _RET_ERRNO | ENOSYS), ("kill", _RET_KILL)):
        labels[name] = len(prog)
        prog.append((_RET, 0, 0, ret))


def _dispatch(prog: list, labels: dict[str, int], cases: dict[int, str]) -> None:
    """Append a binary search on the syscall number (already loaded) that jumps to the label
    ``cases[nr]``, or to "allow" for any other number.

    Why not a chain of comparisons: on attach the kernel replays the filter for every syscall
    number (to cache the always-allowed ones), and the job stage is attached once per job, so the
    path length is paid ~450 times per job (a chain of 20 cost ~30 us more than this search).
    """
    keys = sorted(cases)

    def emit(lo: int, hi: int) -> None:  # keys[lo:hi], hi > lo
        if hi - lo <= 2:
            for i in range(lo, hi):
                prog.append((_JEQ, cases[keys[i]], "allow" if i == hi - 1 else 0, keys[i]))
            return
        mid = (lo + hi) // 2
        upper = f"nr>={keys[mid]}"
        prog.append((_JGE, upper, 0, keys[mid]))
        emit(lo, mid)
        labels[upper] = len(prog)
        emit(mid, hi)

    emit(0, len(keys))


def seccomp_program(stage: str = "all") -> bytes:
    """Assemble a BPF filter for this architecture (raises IsolationError if unsupported).

    ``stage="zygote"``: everything except process management (loaded once, inherited by jobs);
    ``stage="job"``: process management only (loaded per child); ``stage="all"``: both.
    """
    if MACHINE not in _AUDIT_ARCH:
        raise IsolationError(0, f"seccomp: unsupported architecture {MACHINE}")
    table = _DENIED[MACHINE]
    if stage == "zygote":
        names = [n for n in table if n not in _PROCESS_CALLS]
    elif stage == "job":
        names = [n for n in table if n in _PROCESS_CALLS]
    else:
        names = list(table)
    denied = sorted({table[n] for n in names} | (set(_RETUNE[MACHINE].values()) if stage != "zygote" else set()))
    prog: list[tuple[int, object, object, int]] = []
    if stage != "job":  # the zygote's filter, inherited by every job, already checks the ABI
        prog += [(_LD_ABS_W, 0, 0, 4), (_JEQ, 1, 0, _AUDIT_ARCH[MACHINE]), (_RET, 0, 0, _RET_KILL)]
    prog.append((_LD_ABS_W, 0, 0, 0))  # syscall number
    if MACHINE == "x86_64" and stage != "job":
        prog.append((_JGE, "kill", 0, 0x40000000))  # x32 ABI
    cases = dict.fromkeys(denied, "eperm")
    if stage != "zygote":
        cases.update({_CLONE3: "enosys", _CLONE[MACHINE]: "clone", _PRLIMIT64[MACHINE]: "prlimit"})
    if stage != "job":
        cases[_SOCKET[MACHINE]] = "socket"
    labels: dict[str, int] = {}
    _dispatch(prog, labels, cases)
    if stage != "zygote":
        labels["clone"] = len(prog)
        prog += [(_LD_ABS_W, 0, 0, 16), (_JSET, "allow", "eperm", CLONE_THREAD)]
        labels["prlimit"] = len(prog)  # pid (args[0]) must be 0: both 32-bit halves
        prog += [(_LD_ABS_W, 0, 0, 16), (_JEQ, 0, "eperm", 0), (_LD_ABS_W, 0, 0, 20), (_JEQ, "allow", "eperm", 0)]
    if stage != "job":
        labels["socket"] = len(prog)
        prog += [(_LD_ABS_W, 0, 0, 16), (_JEQ, "allow", "eperm", AF_UNIX)]
    _tail(prog, labels)
    return _assemble(prog, labels)


class SeccompFilter:
    """A filter assembled once in the zygote and loaded (in the zygote or a child) with one prctl."""

    def __init__(self, stage: str = "all") -> None:
        code = seccomp_program(stage)
        self.length = len(code) // 8
        self._insns = ctypes.create_string_buffer(code, len(code))
        # struct sock_fprog { unsigned short len; struct sock_filter *filter; }
        self._prog = ctypes.create_string_buffer(
            struct.pack("=H6xQ", self.length, ctypes.addressof(self._insns)), 16
        )

    def load(self) -> None:
        _check(_libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(self._prog), 0, 0),
               "seccomp load")

    @property
    def address(self) -> int:
        """Where the ``sock_fprog`` lives (for the C loop's per-job load); valid while this object lives."""
        return ctypes.addressof(self._prog)

    def load_call(self) -> PreparedCall:
        """``load()`` prepared for a child; valid while this filter object lives."""
        return PreparedCall("seccomp load", "prctl", PR_SET_SECCOMP, SECCOMP_MODE_FILTER,
                            ctypes.addressof(self._prog), 0, 0)
