"""Per-worker cgroups (parent side): hard caps on memory and on the number of tasks.

RLIMIT_AS bounds a job's address space but not pages it stores outside it (memfd and tmpfs
writes). A memory cgroup per worker bounds those too: past the cap the kernel's OOM killer ends
the job, which the pool reports as ``killed``. A pids cgroup bounds threads, which no rlimit
counts per job. Used when this host lets us create cgroups (root or a delegated subtree, v1 or
v2); otherwise the layer is reported inactive.
"""

from __future__ import annotations

import contextlib
import os

PREFIX = "azr-sandbox"
OVERHEAD_MB = 96  # the zygote itself, page tables and slack
MAX_TASKS = 512  # threads and processes per worker (zygote + one job)


def _v2_root() -> str | None:
    for path in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified"):
        try:
            with open(os.path.join(path, "cgroup.controllers")) as fh:
                if "memory" in fh.read().split():
                    return path
        except OSError:
            continue
    return None


def _v1_root() -> str | None:
    path = "/sys/fs/cgroup/memory"
    return path if os.path.exists(os.path.join(path, "memory.limit_in_bytes")) else None


class MemoryCgroup:
    """A memory cgroup for one worker; ``add(pid)`` moves the zygote in, children inherit it."""

    def __init__(self, name: str, limit_mb: int) -> None:
        self.path: str | None = None
        self.detail = ""
        v2, v1 = _v2_root(), _v1_root()
        root, files = (v2, ("memory.max", "memory.swap.max")) if v2 else (v1, ("memory.limit_in_bytes",))
        if root is None:
            self.detail = "no writable memory cgroup controller"
            return
        base = os.path.join(root, PREFIX)
        try:
            os.makedirs(base, exist_ok=True)
            if v2:
                with open(os.path.join(root, "cgroup.subtree_control"), "w") as fh:
                    fh.write("+memory")
                with open(os.path.join(base, "cgroup.subtree_control"), "w") as fh:
                    fh.write("+memory")
            sweep_stale(base)
            path = os.path.join(base, name)
            os.makedirs(path, exist_ok=True)
            limit = str((limit_mb + OVERHEAD_MB) << 20)
            with open(os.path.join(path, files[0]), "w") as fh:
                fh.write(limit)
            if v2:
                with contextlib.suppress(OSError), open(os.path.join(path, files[1]), "w") as fh:
                    fh.write("0")
            self.path = path
            self.detail = f"cgroup {'v2' if v2 else 'v1'} memory cap {limit_mb + OVERHEAD_MB} MiB per worker"
        except OSError as exc:
            self.detail = f"cannot create memory cgroup ({exc.strerror})"

    def add(self, pid: int) -> bool:
        if self.path is None:
            return False
        try:
            with open(os.path.join(self.path, "cgroup.procs"), "w") as fh:
                fh.write(str(pid))
            return True
        except OSError as exc:
            self.detail = f"cannot join memory cgroup ({exc.strerror})"
            self.path = None
            return False

    def remove(self) -> None:
        if self.path is not None:
            with contextlib.suppress(OSError):
                os.rmdir(self.path)


def sweep_stale(base: str) -> None:
    """Remove worker cgroups left behind by crashed pools (empty ones only)."""
    try:
        names = os.listdir(base)
    except OSError:
        return
    for name in names:
        path = os.path.join(base, name)
        try:
            with open(os.path.join(path, "cgroup.procs")) as fh:
                if fh.read().strip():
                    continue
            os.rmdir(path)
        except OSError:
            continue


class PidsCgroup:
    """A pids cgroup for one worker (cgroup v1 ``pids`` hierarchy or the v2 unified one)."""

    def __init__(self, name: str, max_tasks: int = MAX_TASKS) -> None:
        self.path: str | None = None
        self.detail = ""
        root = _v2_root() if _v2_has("pids") else ("/sys/fs/cgroup/pids" if os.path.exists(
            "/sys/fs/cgroup/pids/pids.max") or os.path.exists("/sys/fs/cgroup/pids/cgroup.procs") else None)
        if root is None:
            self.detail = "no writable pids cgroup controller"
            return
        base = os.path.join(root, PREFIX)
        try:
            os.makedirs(base, exist_ok=True)
            if root == _v2_root():
                with contextlib.suppress(OSError), open(os.path.join(base, "cgroup.subtree_control"), "w") as fh:
                    fh.write("+pids")
            sweep_stale(base)
            path = os.path.join(base, name)
            os.makedirs(path, exist_ok=True)
            with open(os.path.join(path, "pids.max"), "w") as fh:
                fh.write(str(max_tasks))
            self.path = path
            self.detail = f"pids cap {max_tasks} threads/processes per worker"
        except OSError as exc:
            self.detail = f"cannot create pids cgroup ({exc.strerror})"

    add = MemoryCgroup.add
    remove = MemoryCgroup.remove


def _v2_has(controller: str) -> bool:
    root = _v2_root()
    if root is None:
        return False
    try:
        with open(os.path.join(root, "cgroup.controllers")) as fh:
            return controller in fh.read().split()
    except OSError:
        return False
