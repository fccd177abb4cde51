"""Filesystem attacks: reading host files and secrets, writing outside the scratch, link tricks,
filling the disk, and leaving things behind in /tmp for the cleaner or the next job."""

from __future__ import annotations

import hashlib
import os
import sys
import sysconfig
import uuid

import pytest

from tests.sandbox.conftest import (
    SECRET,
    make_sandbox,
    need,
    need_any,
    need_private_tmp,
    pristine,
    run,
    same_worker,
    val,
)

STDLIB_OS = os.path.realpath(os.path.join(sysconfig.get_paths()["stdlib"], "os.py"))
BASE_PREFIX = os.path.realpath(sys.base_prefix)
PROJECT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _fingerprint(path: str) -> tuple:
    st = os.stat(path)
    with open(path, "rb") as fh:
        return st.st_mode, st.st_size, st.st_mtime_ns, st.st_nlink, hashlib.sha256(fh.read()).hexdigest()


# ----------------------------------------------------------------------------------------------
# reading host files and secrets


@pytest.mark.parametrize(
    "path",
    ["/etc/passwd", "/etc/shadow", "/etc/hostname", "/root/.bashrc", os.path.join(PROJECT, "pyproject.toml"),
     os.path.join(PROJECT, "sandbox", "pool.py"), "/proc/self/environ", "/proc/1/environ", "/proc/1/cmdline",
     "/sys/kernel/hostname", "/dev/mem"],
)
def test_host_files_cannot_be_read(sb, path):
    need_any(sb, "mount-ns", "landlock")
    res = run(sb, f"x = open({path!r}, 'rb').read(256)")
    assert res.status == "error", f"read {path}: {res.values}"
    assert res.error.split(":")[0] in ("FileNotFoundError", "PermissionError", "OSError")


@pytest.mark.parametrize("path", ["/", "/root", "/etc", "/home", "/work", PROJECT, "/proc", "/sys", "/var"])
def test_host_directories_cannot_be_listed(sb, path):
    need_any(sb, "mount-ns", "landlock")
    res = run(sb, f"import os\nx = os.listdir({path!r})")
    assert res.status == "error", f"listed {path}: {res.values}"


def test_project_checkout_is_invisible(sb):
    need(sb, "mount-ns")
    prog = f"""
import os
x = [os.path.exists(p) for p in ({PROJECT!r}, {os.path.join(PROJECT, 'sandbox')!r}, '/work', '/etc/passwd', '/proc/1')]
"""
    assert val(run(sb, prog)) == [False] * 5


def test_parent_environment_secret_is_not_visible(sb):
    assert os.environ["AZR_TEST_SECRET"] == SECRET  # set before any Sandbox was built
    prog = f"""
import ctypes, gc, os, sys
secret = {SECRET[:10]!r} + {SECRET[10:]!r}  # never one literal, so the scan below cannot find itself
hits = []
if any(secret in k or secret in v for k, v in os.environ.items()):
    hits.append('os.environ')
if 'AZR_TEST_SECRET' in os.environ:
    hits.append('name in os.environ')
libc = ctypes.CDLL(None)
environ = ctypes.POINTER(ctypes.c_char_p).in_dll(libc, 'environ')
i = 0
while environ[i] is not None:
    if secret.encode() in environ[i] or b'AZR_TEST_SECRET' in environ[i]:
        hits.append('C environ')
    i += 1
if libc.getenv(b'AZR_TEST_SECRET'):
    hits.append('getenv')
if any(secret in a for a in sys.argv):
    hits.append('argv')
for o in gc.get_objects():
    if type(o) is dict:
        for k, v in list(o.items()):
            for s in (k, v):
                if type(s) is str and secret in s and s is not secret:
                    hits.append('heap')
for p in ('/proc/self/environ', '/proc/1/environ'):
    try:
        if secret.encode() in open(p, 'rb').read():
            hits.append(p)
    except OSError:
        pass
x = hits
"""
    assert val(run(sb, prog)) == []


# ----------------------------------------------------------------------------------------------
# writing or deleting outside the scratch


@pytest.mark.parametrize(
    "stmt",
    [
        "open('/usr/lib/azr_pwned', 'w').write('x')",
        "open('/azr_pwned', 'w').write('x')",
        f"open({os.path.join(BASE_PREFIX, 'azr_pwned')!r}, 'w').write('x')",
        f"open({STDLIB_OS!r}, 'a').write('\\nimport azr_pwned\\n')",
        f"open({STDLIB_OS!r}, 'r+b').write(b'#')",
        f"import os; os.remove({STDLIB_OS!r})",
        f"import os; os.rename({STDLIB_OS!r}, '/tmp/os.py')",
        f"import os; os.chmod({STDLIB_OS!r}, 0o777)",
        f"import os; os.utime({STDLIB_OS!r}, (0, 0))",
        f"import os; os.truncate({STDLIB_OS!r}, 0)",
        f"import os; os.mkdir({os.path.join(BASE_PREFIX, 'azr_dir')!r})",
        "import os; os.mkdir('/dev/azr')",
        "open('/dev/null', 'w').write('x'); import os; os.unlink('/dev/null')",
        "import os; os.symlink('/tmp', '/azr_link')",
    ],
)
def test_writes_outside_scratch_fail_and_host_is_untouched(sb, stmt):
    need_any(sb, "mount-ns", "landlock")
    before = _fingerprint(STDLIB_OS)
    with same_worker(sb):
        res = run(sb, stmt + "\nx = 1")
        assert res.status == "error", f"{stmt!r} succeeded"
    assert _fingerprint(STDLIB_OS) == before
    for name in ("azr_pwned", "azr_dir"):
        assert not os.path.exists(os.path.join(BASE_PREFIX, name))
    assert not os.path.exists("/usr/lib/azr_pwned")
    assert not os.path.exists("/azr_pwned") and not os.path.lexists("/azr_link")


def test_stdlib_stays_intact_for_the_next_job(sb):
    """Even if some write got through, the next job must import the real stdlib."""
    need_private_tmp(sb)
    with same_worker(sb):
        run(sb, f"open({STDLIB_OS!r}, 'w').write('raise SystemExit(3)')\nx = 1")
        res = run(sb, "import os, json\nx = (os.sep, json.dumps([1]))")
        assert val(res) == ("/", "[1]")


# ----------------------------------------------------------------------------------------------
# link tricks


def test_symlink_in_scratch_to_host_paths_reads_nothing(sb):
    need_private_tmp(sb)
    prog = f"""
import os
out = []
for i, target in enumerate(['/etc/passwd', '/root', {PROJECT!r}, '/proc/self/environ', '/proc/1/root/etc/passwd']):
    link = f'/tmp/l{{i}}'
    os.symlink(target, link)
    try:
        out.append(len(open(link, 'rb').read()) if not os.path.isdir(link) else os.listdir(link))
    except OSError as exc:
        out.append(type(exc).__name__)
x = out
"""
    with same_worker(sb):
        got = val(run(sb, prog))
    assert all(isinstance(g, str) and g.endswith("Error") for g in got), got


def test_symlink_to_stdlib_file_cannot_be_written_through(sb):
    need_private_tmp(sb)
    need_any(sb, "mount-ns", "landlock")
    before = _fingerprint(STDLIB_OS)
    prog = f"""
import os
os.symlink({STDLIB_OS!r}, '/tmp/os_link')
head = open('/tmp/os_link').read(10)  # reading the stdlib is allowed
try:
    open('/tmp/os_link', 'a').write('# pwned')
    wrote = True
except OSError as exc:
    wrote = type(exc).__name__
x = (len(head), wrote)
"""
    with same_worker(sb):
        n, wrote = val(run(sb, prog))
    assert n == 10 and wrote in ("PermissionError", "OSError"), wrote
    assert _fingerprint(STDLIB_OS) == before


def test_hardlink_to_stdlib_file_fails(sb):
    need_private_tmp(sb)
    need_any(sb, "mount-ns", "landlock")
    before = _fingerprint(STDLIB_OS)
    prog = f"""
import os
try:
    os.link({STDLIB_OS!r}, '/tmp/os_hard')
    open('/tmp/os_hard', 'a').write('# pwned')
    x = 'linked and wrote'
except OSError as exc:
    x = type(exc).__name__
"""
    with same_worker(sb):
        assert val(run(sb, prog)) in ("OSError", "PermissionError")
    assert _fingerprint(STDLIB_OS) == before


def test_symlinks_left_for_the_cleaner_do_not_redirect_it(sb):
    """The zygote empties /tmp after each job; links planted there must not lead it elsewhere."""
    need_private_tmp(sb)
    stdlib_dir = os.path.dirname(STDLIB_OS)
    prog = f"""
import os
os.symlink({stdlib_dir!r}, '/tmp/lib')
os.makedirs('/tmp/d/e')
os.symlink({stdlib_dir!r}, '/tmp/d/e/lib')
os.symlink('/', '/tmp/d/root')
os.symlink('..', '/tmp/d/e/up')
x = 1
"""
    before = _fingerprint(STDLIB_OS)
    n_before = len(os.listdir(stdlib_dir))
    with same_worker(sb):
        assert val(run(sb, prog)) == 1
    assert _fingerprint(STDLIB_OS) == before
    assert len(os.listdir(stdlib_dir)) == n_before


# ----------------------------------------------------------------------------------------------
# filling the disk


def test_filling_the_scratch_is_contained(sb):
    need_private_tmp(sb)
    name = f"azr-fill-{uuid.uuid4().hex}"
    prog = f"""
import errno, os
total, err, files = 0, None, 0
chunk = b'x' * (1 << 20)
try:
    while total < (1 << 30):
        with open('/tmp/{name}-' + str(files), 'wb') as fh:
            files += 1
            for _ in range(64):
                fh.write(chunk)
                fh.flush()
                total += len(chunk)
except OSError as exc:
    err = errno.errorcode.get(exc.errno, str(exc.errno))
x = (total, err)
"""
    with same_worker(sb):
        total, err = val(run(sb, prog, timeout_s=10))
    assert err in ("ENOSPC", "EFBIG"), err
    assert total <= 128 << 20, f"a job wrote {total >> 20} MiB"
    assert not any(n.startswith(name) for n in os.listdir("/tmp")), "the job's files reached the host /tmp"


def test_one_file_past_the_size_limit_gets_efbig_or_enospc(sb):
    need_private_tmp(sb)
    prog = """
import errno, os
fd = os.open('/tmp/big', os.O_CREAT | os.O_WRONLY)
try:
    os.ftruncate(fd, 10 << 30)
    x = 'grew to 10 GiB'
except OSError as exc:
    x = errno.errorcode.get(exc.errno)
"""
    with same_worker(sb):
        res = run(sb, prog)
        assert res.status in ("ok", "killed")
        if res.status == "ok":
            assert val(res) in ("EFBIG", "ENOSPC")


def test_many_small_files_are_cleaned_before_the_next_job(sb):
    need_private_tmp(sb)
    prog = """
import os, time
n, t = 0, time.monotonic()
try:
    while time.monotonic() - t < 0.3:
        for _ in range(200):
            os.close(os.open(f'/tmp/f{n}', os.O_CREAT | os.O_WRONLY))
            n += 1
except OSError:
    pass
x = n
"""
    with same_worker(sb):
        assert val(run(sb, prog)) > 0


# ----------------------------------------------------------------------------------------------
# what the previous job leaves in /tmp


def test_files_left_in_tmp_are_gone_for_the_next_job(sb):
    need_private_tmp(sb)
    prog = """
import os
open('/tmp/note', 'w').write('from the previous job')
os.makedirs('/tmp/a/b/c')
open('/tmp/a/b/c/deep', 'w').write('x')
open('/tmp/.hidden', 'w').write('x')
try:
    os.mkfifo('/tmp/fifo')  # mknod may be denied by seccomp; a plain file stands in
except OSError:
    open('/tmp/fifo', 'w').close()
os.chmod('/tmp', 0o777)
x = sorted(os.listdir('/tmp'))
"""
    with same_worker(sb):
        assert val(run(sb, prog)) == [".hidden", "a", "fifo", "note"]


@pytest.mark.parametrize("mode", [0, 0o100, 0o400, 0o500])
def test_unreadable_directories_in_tmp_are_still_removed(fresh_sb, mode):
    """A job may lock its own directories; their content must not survive into the next job."""
    need_private_tmp(fresh_sb)
    prog = f"""
import os
os.makedirs('/tmp/locked/inner')
open('/tmp/locked/inner/secret', 'w').write('from the previous job')
open('/tmp/locked/file', 'w').write('x' * 100000)
os.chmod('/tmp/locked/inner', {mode})
os.chmod('/tmp/locked', {mode})
x = 1
"""
    with same_worker(fresh_sb):
        assert val(run(fresh_sb, prog)) == 1


@pytest.mark.parametrize("depth", [1200, 3000])
def test_deep_directory_tree_is_cleaned_without_killing_the_worker(fresh_sb, depth):
    """Deeply nested directories: legal for the job; the cleaner must remove them and survive."""
    need_private_tmp(fresh_sb)
    prog = f"import os\nos.chdir('/tmp')\nfor _ in range({depth}):\n    os.mkdir('d')\n    os.chdir('d')\n"
    prog += "open('note', 'w').write('for the next job')\nx = 1"
    with same_worker(fresh_sb):
        res = run(fresh_sb, prog)
        assert res.status == "ok", res.error


def test_xattrs_on_scratch_do_not_reach_the_next_job():
    with make_sandbox() as box:
        need(box, "mount-ns")
        with same_worker(box):
            res = run(box, "import os\nos.setxattr('/tmp', 'user.azr_leak', b'from job 1')\nx = 1")
            assert res.status in ("ok", "error")


def test_scratch_timestamps_do_not_carry_a_message_to_the_next_job():
    with make_sandbox() as box:
        need(box, "mount-ns")
        run(box, "import os\nos.utime('/tmp', (1, 424242))\nx = 1")
        got = val(run(box, "import os\nx = os.stat('/tmp').st_mtime"))
    assert got != 424242.0, "the previous job's chosen mtime of /tmp is visible to the next job"


def test_pristine_baseline_is_sane():
    state = pristine()
    assert state["scratch"] == [] and state["uid"][0] in (0, os.getuid(), 65534)


def test_inode_flood_is_contained():
    prog = """
import os, time
n, t = 0, time.monotonic()
try:
    while time.monotonic() - t < 1.6:
        for _ in range(500):
            os.close(os.open(f'/tmp/{n}', os.O_CREAT | os.O_WRONLY))
            n += 1
except OSError:
    pass
x = n
"""
    with make_sandbox(memory_mb=64) as box:
        need(box, "memory-cgroup")  # without one the flood is bounded by nothing but host memory
        with same_worker(box):
            res = run(box, prog)
            assert res.status == "ok", (res.status, res.error)
            assert val(res) <= 65536, f"{val(res)} inodes in a 64 MiB scratch"
