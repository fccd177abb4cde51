"""The fork server ("zygote"): one small, locked-down interpreter per worker.

Started once per worker by :mod:`sandbox.pool` as ``python -s -S -B zygote.py CONFIG_JSON`` with a
clean environment and ``PYTHONHASHSEED`` pinned. It pre-imports the allowed stdlib, enters its
namespaces (no network, a minimal filesystem view, private scratch), then serves jobs: for each it
forks a child that applies the per-job layers (rlimits, uid drop, Landlock, seccomp), runs the job
with fresh globals and reseeded ``random``, and reports a canonical result. The zygote itself never
runs a job's code (only its own fixed warm-up jobs, at start-up), so every child starts from the
same pristine state.

Protocol on stdin/stdout: see :mod:`protocol` (jobs in, binary replies out).
The serving loop runs in C (:file:`_forkloop.c`, built at install) when available: after each fork
every page the zygote writes is a copy-on-write fault, and the Python loop below writes many. The
Python loop is the fallback, logged as such. Stdlib only (run without site-packages).
"""

from __future__ import annotations

import builtins
import gc
import json
import os
import resource
import select
import signal
import stat
import sys
import time
from collections.abc import Callable

import isolation  # sibling modules (the zygote runs with its own directory on sys.path)
import protocol
import values

try:
    import _forkloop  # the C serving loop (see _forkloop.c); absent when it was not built
except ImportError:
    _forkloop = None

NOBODY = 65534
MAX_RESULT_BYTES = 64 * 1024 * 1024
PIPE_READ = 1 << 16  # a pipe holds 64 KiB: larger reads only allocate more
OUTPUT_FILE_LIMIT = 16 * 1024 * 1024
# Trusted jobs the zygote runs at start-up (see Zygote.warm_up): typical AZR-style programs and
# every kind of value the encoder handles, plus a failing job for the error path.
WARMUP_ROUNDS = 64
WARMUP_JOBS = (
    ("def f(xs):\n    out = {}\n    for i, x in enumerate(xs):\n        out[x % 3] = out.get(x % 3, 0) + i\n"
     "    return sorted(out.items())", ["f([1, 2, 3, 4, 5])", "f([])"]),
    ("def f(s):\n    return ''.join(reversed(s)).upper(), len(s), s.count('a')", ["f('banana')"]),
    ("from collections import Counter\nimport math\n\ndef f(n):\n    c = Counter(str(n))\n"
     "    return [math.sqrt(n), n // 3, c.most_common(1), {n, -n}, frozenset([1]), None, True, b'x', 1j]",
     ["f(12321)"]),
    ("def f(a, b):\n    return a / b", ["f(1, 0)"]),
)


# ----------------------------------------------------------------------------------------------
# start-up: probe and enter the isolation layers


class Zygote:
    def __init__(self, cfg: dict) -> None:
        self.cfg = cfg
        self.layers: dict[str, dict] = {}
        self.is_root = os.geteuid() == 0
        self.scratch = "/tmp"
        self.ruleset_fd: int | None = None
        self.seccomp: isolation.SeccompFilter | None = None
        self.devnull = -1
        # The child's layers as ready-made calls: building them here keeps that work (and the pages
        # it writes) out of every job.
        self.pdeathsig: Callable[[], object] = lambda: None
        self.landlock_call: Callable[[], object] | None = None
        self.seccomp_call: Callable[[], object] | None = None
        self.rlimits: dict[int, tuple] = {}
        self.reseed: Callable[[int], None] = lambda seed: None
        self.base_vsz = 0
        self.buffers: list[WipedBuffer] = []  # the Python loop's: job, result, stdout, stderr

    def note(self, name: str, active: bool | None, detail: str = "") -> None:
        """Record a layer: active True/False, or None when it does not apply on this host."""
        self.layers[name] = {"active": active, "detail": detail}

    def setup(self) -> None:
        cfg = self.cfg
        if cfg.get("fork_loop") == "c" and _forkloop is None:
            raise RuntimeError("fork_loop='c' but sandbox/_forkloop.c is not built: reinstall with a C compiler")
        # No PR_SET_PDEATHSIG here: it fires when the *thread* that started us exits, and pools are
        # used from short-lived threads. We notice the pool's death as a hang-up on stdin instead.
        os.environ.clear()
        os.environ.update({"PATH": "/usr/bin:/bin", "HOME": "/tmp", "TMPDIR": "/tmp", "LANG": "C.UTF-8"})
        self.note("clean-env", True, "environment replaced by PATH, HOME, TMPDIR, LANG")
        self.note("hashseed", sys.flags.hash_randomization == 0 or os.environ.get("PYTHONHASHSEED") is None,
                  "PYTHONHASHSEED=0: str/bytes hashes and set order are reproducible")
        # Preloaded modules must not register fork hooks: each one runs in every child (random's
        # reseed from urandom alone costs ~0.1 ms per job). The zygote is single-threaded, so the
        # hooks have nothing to repair; the child reseeds random itself.
        register_at_fork = os.register_at_fork
        os.register_at_fork = lambda **kw: None  # type: ignore[assignment]
        try:
            for mod in cfg["preload"]:
                try:
                    __import__(mod)
                except ImportError:
                    pass
            import random

            # Jobs run with seed 0 unless told otherwise (AZR's checks do), so the zygote holds
            # the seed-0 state and such a job skips random.seed. The zygote never draws from
            # ``random`` afterwards.
            random.seed(0)
            self.reseed = random.seed
        finally:
            os.register_at_fork = register_at_fork
        if "threading" in sys.modules:
            raise RuntimeError("a preloaded module imported threading; the zygote must stay thread-free")
        # Under memory pressure the kernel must kill the job, never the zygote: the zygote opts out
        # (while still privileged) and each job opts in through a /proc handle kept for that.
        self.proc_fd = -1
        try:  # needs CAP_SYS_RESOURCE; without it the jobs' +1000 alone still puts them first
            with open("/proc/self/oom_score_adj", "w") as fh:
                fh.write("-1000")
        except OSError:
            pass
        try:
            self.proc_fd = os.open("/proc", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            pass
        ro_paths = sorted(_read_only_paths(cfg["prefixes"]))

        ns_flags = isolation.CLONE_NEWNS | isolation.CLONE_NEWNET | isolation.CLONE_NEWIPC | isolation.CLONE_NEWUTS
        namespaces = False
        try:
            if self.is_root:
                isolation.unshare(ns_flags)
                self.note("user-ns", None, "not needed: running as root, jobs drop to uid 65534")
            else:
                isolation.enter_user_namespace(ns_flags)
                self.note("user-ns", True, "unprivileged user namespace")
            namespaces = True
            self.note("net-ns", True, "own network namespace: no interfaces up, no route out")
            self.note("ipc-uts-ns", True, "own IPC and UTS namespaces")
        except OSError as exc:
            self.note("net-ns", False, f"unavailable ({exc}); network is blocked by seccomp only")
            self.note("ipc-uts-ns", False, str(exc))
        pid_ns = False
        if namespaces:  # jobs see no host process: nothing to signal, retune or inspect by pid
            try:
                isolation.unshare(isolation.CLONE_NEWPID)
                pid_ns = True
            except OSError as exc:
                self.note("pid-ns", False, f"unavailable ({exc})")
        mount_ok = False
        if namespaces:
            try:
                scratch_uid = NOBODY if self.is_root else 0
                isolation.build_minimal_root(ro_paths, cfg["disk_mb"], scratch_uid)
                mount_ok = True
                self.note("mount-ns", True, f"minimal root: read-only {', '.join(ro_paths)}; "
                          f"private /tmp tmpfs {cfg['disk_mb']} MiB")
            except OSError as exc:
                self.note("mount-ns", False, f"unavailable ({exc})")
        else:
            self.note("mount-ns", False, "no namespaces")
        if not mount_ok:
            import tempfile

            self.scratch = tempfile.mkdtemp(prefix="azr-sandbox-")
            if self.is_root:
                os.chown(self.scratch, NOBODY, NOBODY)
        sys.path[:] = [p for p in sys.path if p and os.path.isdir(p) and "sandbox" not in p]
        os.chdir(self.scratch)

        if self.is_root:
            # Drop once, here: the zygote and every job run as nobody (no per-job credential change).
            os.setgroups([])
            os.setresgid(NOBODY, NOBODY, NOBODY)
            os.setresuid(NOBODY, NOBODY, NOBODY)
            self.note("uid-drop", True, "zygote and jobs run as uid/gid 65534 with no groups")
        else:
            self.note("uid-drop", False, "not root: jobs keep the caller's uid (signals blocked by seccomp)")
        # The zygote stays "dumpable" so each job can open its own /proc oom_score_adj; ptrace of it
        # is ruled out by seccomp (no ptrace, no process_vm_*) and the PID namespace (it is invisible).
        isolation.prctl(isolation.PR_SET_DUMPABLE, 1)
        isolation.prctl(isolation.PR_SET_NO_NEW_PRIVS, 1)

        abi = isolation.landlock_abi()
        if abi > 0:
            try:
                self.ruleset_fd = isolation.landlock_ruleset(ro_paths, [self.scratch], abi)
                extra = " + no TCP" if abi >= 4 else ""
                extra += " + signal/abstract-socket scoping" if abi >= 6 else ""
                self.note("landlock", True, f"ABI {abi}: read-only prefixes, read-write scratch{extra}")
            except OSError as exc:
                self.note("landlock", False, f"ABI {abi} but ruleset failed: {exc}")
        else:
            self.note("landlock", False, "kernel has no Landlock (or it is disabled at boot)")
        try:
            zygote_filter = isolation.SeccompFilter("zygote")
            self.seccomp = isolation.SeccompFilter("job")
            zygote_filter.load()
            self.note("seccomp", True, "zygote: no exec/ptrace/mount/bpf/io_uring, sockets AF_UNIX only; "
                      "jobs also: no fork/kill/setsid (threads allowed)")
        except OSError as exc:
            self.note("seccomp", False, str(exc))
        self.note("rlimits", True, f"address space +{cfg['memory_mb']} MiB, CPU {cfg['timeout_s']:.0f}+1 s, "
                  f"file size {OUTPUT_FILE_LIMIT >> 20} MiB, 64 open files, no core dumps")
        self.note("fork-per-job", True, "each job runs in a fresh fork of this pristine interpreter")
        if pid_ns:
            self.start_pid_namespace_init()
            self.note("pid-ns", True, "jobs live in the worker's own PID namespace (host processes invisible)")
        elif "pid-ns" not in self.layers:
            self.note("pid-ns", False, "no namespaces")
        self.devnull = os.open("/dev/null", os.O_RDWR)
        self.pdeathsig = isolation.prctl_call(isolation.PR_SET_PDEATHSIG, signal.SIGKILL)
        if self.ruleset_fd is not None:
            self.landlock_call = isolation.landlock_restrict_call(self.ruleset_fd)
        if self.seccomp is not None:
            self.seccomp_call = self.seccomp.load_call()
        self.warm_up()
        gc.collect()
        gc.freeze()  # keep the zygote's objects out of the children's collections (faster, less COW)
        self.base_vsz = _vm_size_bytes()  # a job's address-space budget is memory_mb on top of this

    def warm_up(self) -> None:
        """Run a few trusted jobs through the child's code path, so that the interpreter's caches are
        warm in the zygote itself: CPython 3.11 rewrites bytecode as it warms up and specialises, and
        fills a type-attribute cache and the interned-name table; in each child that did this itself,
        every page written was a copy-on-write fault. Deterministic, and ``random`` is reseeded after."""
        for _ in range(WARMUP_ROUNDS):
            for program, exprs in WARMUP_JOBS:
                execute_job((program, exprs, 0, "module", "<main>", 0), False, self.reseed)
        self.reseed(0)

    def start_pid_namespace_init(self) -> None:
        """The first fork after unshare(CLONE_NEWPID) is the namespace's PID 1; the namespace lives
        as long as it does. It only waits, and dies with the zygote (taking every job with it)."""
        pid = os.fork()
        if pid == 0:
            try:
                isolation.prctl(isolation.PR_SET_PDEATHSIG, signal.SIGKILL)
                _close_all_but(set())
                while True:
                    signal.pause()
            finally:
                os._exit(0)

    # ------------------------------------------------------------------------------------------
    # serving

    def serve(self) -> None:
        loop = "c" if _forkloop is not None and self.cfg.get("fork_loop") != "python" else "python"
        protocol.write_frame(1, {"hello": True, "pid": os.getpid(), "layers": self.layers, "fork_loop": loop})
        if loop == "c":
            self.serve_in_c()
        self.buffers = [WipedBuffer() for _ in range(4)]
        while True:
            head = protocol.read_exact(0, 4)
            frame = self.buffers[0].fill_from(0, protocol.LENGTH.unpack(head)[0]) if head else None
            if frame is None:
                os._exit(0)
            parts = self.run_job(frame)
            del frame
            protocol.writev_all(1, parts)
            del parts
            for buf in self.buffers:
                buf.wipe()

    def serve_in_c(self) -> None:
        """The C loop: returns only in a job's child, with every per-job layer applied."""
        scratch_fd = os.open(self.scratch, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        rlimits = [(which, soft) for which, (soft, _hard) in self.job_rlimits(self.cfg["timeout_s"])]
        seccomp_prog = self.seccomp.address if self.seccomp is not None else 0
        ruleset_fd = self.ruleset_fd if self.ruleset_fd is not None else -1
        try:
            body, w, capture = _forkloop.serve(
                float(self.cfg["timeout_s"]), int(self.cfg["max_output_bytes"]), MAX_RESULT_BYTES, self.devnull,
                self.proc_fd, ruleset_fd, scratch_fd, seccomp_prog, rlimits, self.clean_scratch)
            run_job_in_child(protocol.job_record(body), w, capture, self.reseed)
        finally:
            os._exit(70)  # only a failure in the child gets here

    def run_job(self, frame: memoryview) -> list:
        """Run one job (a frame's body) in a fresh child; the reply frame for the pool, in parts
        that view :attr:`buffers` (wiped once the reply is written)."""
        job_id, timeout, job_flags = protocol.JOB_HEAD.unpack_from(frame)
        timeout = min(timeout if timeout > 0 else float(self.cfg["timeout_s"]), 1e7)
        capture = bool(job_flags & protocol.JOB_CAPTURE)
        out_fd = err_fd = -1
        if capture:
            out_fd = os.memfd_create("stdout", os.MFD_CLOEXEC)
            err_fd = os.memfd_create("stderr", os.MFD_CLOEXEC)
        limits = self.job_rlimits(timeout)
        r, w = os.pipe2(os.O_CLOEXEC)
        start = time.perf_counter()
        pid = os.fork()
        if pid == 0:
            try:
                os.close(r)
                self.child(frame, w, out_fd, err_fd, limits)
            except BaseException as exc:  # noqa: BLE001 - a layer failed: report it, never run the job
                msg = json.dumps({"status": "error", "values": [],
                                  "error": f"SandboxSetupError: {type(exc).__name__}: {exc}"})
                try:
                    os.write(w, msg.encode())
                except OSError:
                    pass
            finally:
                os._exit(70)
        os.close(w)
        status, data, timed_out, cut = self.supervise(pid, r, start + timeout)
        duration = time.perf_counter() - start
        os.close(r)
        flags = (protocol.TIMED_OUT if timed_out else 0) | (protocol.CUT if cut else 0)
        output = [memoryview(b""), memoryview(b"")]
        if capture:
            cap = int(self.cfg["max_output_bytes"])
            streams = ((out_fd, protocol.STDOUT_TRUNCATED), (err_fd, protocol.STDERR_TRUNCATED))
            for i, (fd, truncated) in enumerate(streams):
                size = os.fstat(fd).st_size
                output[i] = self.buffers[2 + i].fill_from(fd, min(size, cap), offset=0) or memoryview(b"")
                flags |= truncated if size > cap else 0
                os.close(fd)
        if not self.clean_scratch():
            flags |= protocol.RETIRE  # the pool replaces this worker: a fresh one has a fresh scratch
        head = protocol.reply_head(job_id, status, flags, duration, len(data), len(output[0]), len(output[1]))
        return [head, data, *output]

    def supervise(self, pid: int, r: int, deadline: float) -> tuple[int, memoryview, bool, bool]:
        """Collect the child's result and exit status; SIGKILL it at the deadline or on overflow."""
        result = self.buffers[1]
        timed_out = cut = exited = r_done = False
        pidfd = os.pidfd_open(pid)  # Linux >= 5.3
        poller = select.poll()
        poller.register(r, select.POLLIN)
        poller.register(pidfd, select.POLLIN)
        poller.register(0, 0)  # hang-up only: the pool is gone
        while not (exited or timed_out or cut):
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                timed_out = True
                break
            for fd, _ev in poller.poll(remaining * 1000):
                if fd == 0:
                    os.kill(pid, signal.SIGKILL)
                    os._exit(0)
                if fd == pidfd:
                    exited = True
                    continue
                if not result.read_some(r):
                    poller.unregister(r)
                    r_done = True
                    continue
                cut = result.used > MAX_RESULT_BYTES
        if timed_out or cut:
            os.kill(pid, signal.SIGKILL)
        try:  # the job's whole process group (only the job itself when seccomp is active)
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass
        if exited and not r_done:  # what is left in the pipe is all there is; never wait on a leftover holder
            os.set_blocking(r, False)
            try:
                while result.used <= MAX_RESULT_BYTES and result.read_some(r):
                    pass
            except BlockingIOError:
                pass
        os.close(pidfd)
        _, status = os.waitpid(pid, 0)
        return status, memoryview(result.data)[: result.used], timed_out, cut

    def clean_scratch(self) -> bool:
        """Empty the scratch for the next job; False when that failed (then this worker retires).
        Everything in it belongs to our uid, so modes a job set are undone with chmod first."""
        try:
            # The job is dead and reaped: an empty listing needs no second look (the second one
            # checks that a wipe worked).
            emptied = True
            if os.listdir(self.scratch):
                _wipe(self.scratch)
                emptied = not os.listdir(self.scratch)
            # Nothing about the scratch itself may carry a message to the next job either.
            os.chmod(self.scratch, 0o700)
            os.utime(self.scratch, (0, 0))
            for name in os.listxattr(self.scratch):
                os.removexattr(self.scratch, name)
            return emptied
        except Exception:  # noqa: BLE001 - never let cleanup take the worker down
            return False

    # ------------------------------------------------------------------------------------------
    # the child: per-job layers, then the job

    def job_rlimits(self, timeout: float) -> tuple:
        """The per-job rlimits as ``(resource, (soft, hard))`` pairs, built once per CPU limit."""
        cpu = int(timeout) + 1
        limits = self.rlimits.get(cpu)
        if limits is None:
            if len(self.rlimits) > 64:
                self.rlimits.clear()
            mem = self.base_vsz + (int(self.cfg["memory_mb"]) << 20)
            limits = self.rlimits[cpu] = tuple((which, (value, value)) for which, value in (
                (resource.RLIMIT_AS, mem),
                (resource.RLIMIT_DATA, mem),
                (resource.RLIMIT_CPU, cpu),
                (resource.RLIMIT_FSIZE, OUTPUT_FILE_LIMIT),
                (resource.RLIMIT_NOFILE, 64),
                (resource.RLIMIT_CORE, 0),
                (resource.RLIMIT_MEMLOCK, 0),
                (resource.RLIMIT_MSGQUEUE, 0),
                (resource.RLIMIT_NPROC, 4096),  # threads count here too; the pids cgroup is the tight bound
            ))
        return limits

    def child(self, frame: memoryview, w: int, out_fd: int, err_fd: int, limits: tuple) -> None:
        capture = out_fd >= 0
        zygote = os.getppid()
        os.setsid()  # own session and process group: a job's kill(0, ...) reaches only itself
        self.pdeathsig()  # the job dies with its zygote
        if os.getppid() != zygote:
            os._exit(71)
        if self.proc_fd >= 0:  # first in line for the OOM killer
            fd = os.open("self/oom_score_adj", os.O_WRONLY, dir_fd=self.proc_fd)
            os.write(fd, b"1000")
            os.close(fd)
        if self.landlock_call is not None:
            self.landlock_call()
        # stdin /dev/null, stdout/stderr captured or /dev/null, the result pipe, and nothing else
        # (the Landlock ruleset and the /proc handle included).
        os.dup2(self.devnull, 0)
        os.dup2(out_fd if capture else self.devnull, 1)
        os.dup2(err_fd if capture else self.devnull, 2)
        os.closerange(3, w)
        os.closerange(w + 1, 1 << 16)
        for which, value in limits:
            resource.setrlimit(which, value)
        if self.seccomp_call is not None:
            self.seccomp_call()
        run_job_in_child(protocol.job_record(frame[protocol.JOB_HEAD.size:]), w, capture, self.reseed)


class WipedBuffer:
    """A byte buffer the Python loop reuses and zeroes after every job. Each child inherits the
    zygote's memory, and freed memory is not cleared: a job's program, result or output held in
    ordinary ``bytes`` would outlive it there, for the next job to read with ``ctypes``."""

    def __init__(self) -> None:
        self.data = bytearray(PIPE_READ)
        self.used = 0

    def room(self, n: int) -> memoryview:
        """A view of the buffer with at least ``n`` bytes (a larger one keeps the bytes used so far)."""
        if n > len(self.data):
            bigger = bytearray(max(n, 2 * len(self.data)))
            memoryview(bigger)[: self.used] = memoryview(self.data)[: self.used]
            self.data[:] = bytes(len(self.data))
            self.data = bigger
        return memoryview(self.data)

    def fill_from(self, fd: int, n: int, offset: int | None = None) -> memoryview | None:
        """Exactly ``n`` bytes from ``fd`` (at ``offset`` for a file), or ``None`` at end of file."""
        view = self.room(n)
        while self.used < n:
            part = [view[self.used : n]]
            got = os.readv(fd, part) if offset is None else os.preadv(fd, part, offset + self.used)
            if got <= 0:
                return None
            self.used += got
        return view[:n]

    def read_some(self, fd: int) -> int:
        """Append one read of up to ``PIPE_READ`` bytes; 0 at end of file."""
        view = self.room(self.used + PIPE_READ)
        got = os.readv(fd, [view[self.used : self.used + PIPE_READ]])
        self.used += got
        return got

    def wipe(self) -> None:
        self.data[: self.used] = bytes(self.used)
        self.used = 0
        if len(self.data) > (1 << 20):  # a large one goes back (see _forkloop.c's shrink)
            self.data = bytearray(PIPE_READ)


def run_job_in_child(job: tuple, result_fd: int, capture: bool, reseed: Callable[[int], None]) -> None:
    """Run the job (a :class:`protocol.JobRecord`'s fields) and write one JSON result to ``result_fd``;
    never returns."""
    view = memoryview(execute_job(job, capture, reseed))
    try:
        while view:
            view = view[os.write(result_fd, view):]
    except OSError:
        pass
    os._exit(0)


def execute_job(job: tuple, capture: bool, reseed: Callable[[int], None]) -> bytes:
    """The job's result record (JSON). Runs job code: only ever called in a job's child, or on the
    zygote's own warm-up jobs."""
    program, exprs, seed, mode, filename, max_chars = job
    if seed:  # seed 0: the state inherited from the zygote already is random.seed(0)'s
        reseed(seed)
    # Shift the heap so id()/object-hash-dependent programs give different answers for different
    # seeds (the determinism check runs a program under two seeds). Seed 0 allocates nothing.
    pad = [object() for _ in range((seed * 7919) % 509 + 1)] if seed else []
    pad += [[None] * (i % 13) for i in range((seed * 31) % 97)] if seed else []
    max_chars = max_chars or values.DEFAULT_MAX_CHARS
    main = mode == "main"
    scope: dict = {"__name__": "__main__" if main else "__job__", "__builtins__": builtins}
    out: list[str] = []
    status, error = "ok", None
    try:
        # dont_inherit: the job must not compile under this module's ``from __future__`` imports
        code = compile(program, "<program>" if not main else filename, "exec",
                       dont_inherit=True)
        exec(code, scope)
        for expr in exprs:
            out.append(values.encode(eval(compile(expr, "<expr>", "eval", dont_inherit=True), scope), max_chars))
    except MemoryError:
        status, error, out = "memory", "MemoryError", []
    except SystemExit as exc:
        if main and exc.code in (None, 0):
            status = "ok"
        else:
            status, error, out = "error", f"SystemExit: {_safe_text(exc.code)}", []
    except BaseException as exc:  # noqa: BLE001 - every job failure is reported, never raised
        status, out = "error", []
        error = f"{type(exc).__name__}: {_safe_text(exc)}"
        if main:  # like a script: the traceback goes to the job's stderr
            try:
                import traceback

                traceback.print_exc()
            except BaseException:  # noqa: BLE001
                pass
    try:
        for stream in (sys.stdout, sys.stderr) if capture else ():  # else they go to /dev/null
            try:
                stream.flush()
            except BaseException:  # noqa: BLE001 - a full or replaced stream must not lose the result
                pass
        data = _result_json(status, out, error)
    except MemoryError:
        data = b'{"status": "memory", "values": [], "error": "MemoryError"}'
    except BaseException:  # noqa: BLE001
        data = b'{"status": "error", "values": [], "error": "ResultError: could not encode result"}'
    del pad
    return data


_json_str = json.encoder.encode_basestring_ascii  # C: a JSON string literal, ASCII only


def _result_json(status: str, values: list[str], error: str | None) -> bytes:
    """``json.dumps`` of the result record, assembled directly: the job's last step, kept short
    because every page it touches is a copy-on-write fault in the child."""
    err = "null" if error is None else _json_str(error)
    return f'{{"status": "{status}", "values": [{", ".join(map(_json_str, values))}], "error": {err}}}'.encode()


def _safe_text(obj: object) -> str:
    try:
        text = str(obj)
    except BaseException:  # noqa: BLE001 - a hostile __str__
        text = f"<unprintable {type(obj).__name__}>"
    if not isinstance(text, str):
        text = "<unprintable>"
    return text[:2000]


def _wipe(path: str) -> None:
    """Remove everything beneath ``path``: iterative, fd-relative, never following symlinks.

    Each pass moves the contents of every top-level directory up into ``path`` (two fds at a time)
    and removes the emptied directory, so arbitrarily deep trees need no recursion and no long
    paths. Stops when a pass makes no progress (the caller then retires the worker).
    """
    root = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    serial = 0
    try:
        while True:
            names = os.listdir(root)
            if not names:
                return
            progress = False
            for name in names:
                try:
                    st = os.stat(name, dir_fd=root, follow_symlinks=False)
                    if not stat.S_ISDIR(st.st_mode):
                        os.unlink(name, dir_fd=root)
                        progress = True
                        continue
                    os.chmod(name, 0o700, dir_fd=root)  # a real directory (checked above), ours
                    sub = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=root)
                    try:
                        for child in os.listdir(sub):
                            if stat.S_ISDIR(os.stat(child, dir_fd=sub, follow_symlinks=False).st_mode):
                                os.chmod(child, 0o700, dir_fd=sub)  # moving a directory writes its '..'
                            serial += 1
                            os.rename(child, f".azr-wipe-{serial}", src_dir_fd=sub, dst_dir_fd=root)
                            progress = True
                    finally:
                        os.close(sub)
                    os.rmdir(name, dir_fd=root)
                    progress = True
                except OSError:
                    serial += 1  # e.g. a name collision: retried on the next pass
            if not progress:
                return
    finally:
        os.close(root)


def _close_all_but(keep: set[int]) -> None:
    low = 0
    for fd in sorted(keep):
        if fd > low:
            os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, 1 << 16)


def _vm_size_bytes() -> int:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 256 << 20


def _read_only_paths(prefixes: list[str]) -> set[str]:
    """The interpreter prefix plus the directories of every shared library already mapped, except
    this package's own (``_forkloop`` is mapped already; jobs have no business with the sandbox)."""
    paths = {os.path.realpath(p) for p in prefixes if p and os.path.isdir(p)}
    here = os.path.dirname(os.path.realpath(__file__))
    try:
        with open("/proc/self/maps") as fh:
            for line in fh:
                parts = line.split()
                if len(parts) >= 6 and parts[5].startswith("/") and ".so" in parts[5]:
                    folder = os.path.dirname(os.path.realpath(parts[5]))
                    if folder != here:
                        paths.add(folder)
    except OSError:
        pass
    # drop paths nested in another listed path
    out = set()
    for p in sorted(paths):
        if not any(p.startswith(q + "/") for q in out):
            out.add(p)
    return out


def main() -> None:
    cfg = json.loads(sys.argv[1])
    z = Zygote(cfg)
    try:
        z.setup()
    except BaseException as exc:  # noqa: BLE001 - report why start-up failed, then exit
        protocol.write_frame(1, {"hello": False, "error": f"{type(exc).__name__}: {exc}"})
        os._exit(1)
    z.serve()


if __name__ == "__main__":
    main()
