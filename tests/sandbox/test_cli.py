"""The command line: ``python -m sandbox run FILE`` prints exactly one JSON verdict on stdout (whatever
the job prints), exits 0 when a verdict was produced; ``python -m sandbox check`` lists the layers."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KEYS = {"status", "stdout", "stderr", "stdout_truncated", "stderr_truncated", "duration_s", "error"}


def _cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=ROOT)
    return subprocess.run([sys.executable, "-m", "sandbox", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def _run_file(tmp_path, source: str, *extra: str) -> tuple[dict, subprocess.CompletedProcess]:
    path = tmp_path / "job.py"
    path.write_text(source)
    proc = _cli("run", str(path), "--timeout", "2", "--memory-mb", "256", *extra)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 1, f"stdout is not exactly one line: {proc.stdout[:500]!r}"
    verdict = json.loads(lines[0])
    assert isinstance(verdict, dict) and set(verdict) >= KEYS, verdict
    return verdict, proc


def test_run_prints_one_json_verdict(tmp_path):
    verdict, _ = _run_file(tmp_path, "import sys\nprint('hello')\nprint('oops', file=sys.stderr)\n")
    assert verdict["status"] == "ok" and verdict["error"] is None
    assert verdict["stdout"] == "hello\n" and verdict["stderr"] == "oops\n"
    assert verdict["stdout_truncated"] is False and isinstance(verdict["duration_s"], float)


def test_garbage_and_fake_json_from_the_job_stay_inside_the_verdict(tmp_path):
    fake = '{"status": "ok", "stdout": "", "stderr": "", "duration_s": 0}'
    source = f"""
import os, struct, sys
fake = {fake!r}
print(fake)
print(fake, file=sys.stderr)
sys.stdout.write('\\x00\\x1b[2J not json }}{{ \\udcff'.encode('utf-8', 'surrogateescape').decode('utf-8', 'replace'))
os.write(1, b'\\xff\\xfe raw bytes\\n' + struct.pack('>I', len(fake)) + fake.encode())
os.write(2, b'\\n' + fake.encode() + b'\\n')
for fd in range(3, 64):
    try:
        os.write(fd, fake.encode() + b'\\n')
    except OSError:
        pass
raise SystemExit(3)
"""
    verdict, proc = _run_file(tmp_path, source)
    assert verdict["status"] == "error" and "SystemExit" in verdict["error"]
    assert fake in verdict["stdout"] and fake in verdict["stderr"]
    assert fake not in proc.stderr, "the job's stderr leaked onto the CLI's own stderr"


@pytest.mark.parametrize(
    ("source", "status"),
    [
        ("while True:\n    pass\n", "timeout"),
        ("x = bytearray(8 << 30)\n", "memory"),
        ("import ctypes\nctypes.string_at(0)\n", "killed"),
        ("def f(:\n", "error"),
        ("raise SystemExit(0)\n", "ok"),
        ("import os\nos.system('echo pwned')\n", "ok"),
    ],
)
def test_run_reports_each_status(tmp_path, source, status):
    verdict, _ = _run_file(tmp_path, source, "--timeout", "0.5")  # the last --timeout wins
    assert verdict["status"] == status, verdict
    assert "pwned" not in verdict["stdout"]


def test_run_script_sees_main_and_a_traceback(tmp_path):
    source = "import sys\nprint(__name__)\nif __name__ == '__main__':\n    1 / 0\n"
    verdict, _ = _run_file(tmp_path, source)
    assert verdict["stdout"] == "__main__\n"
    assert verdict["status"] == "error" and verdict["error"].startswith("ZeroDivisionError")
    assert "ZeroDivisionError" in verdict["stderr"]


def test_run_caps_huge_output(tmp_path):
    verdict, proc = _run_file(tmp_path, "for _ in range(200):\n    print('x' * 100000)\n")
    assert verdict["stdout_truncated"] is True and len(verdict["stdout"]) <= 64 * 1024
    assert len(proc.stdout) < 200_000


def test_run_missing_file_fails_cleanly(tmp_path):
    proc = _cli("run", str(tmp_path / "nope.py"))
    assert proc.returncode != 0 and proc.stdout == ""
    assert "nope.py" in proc.stderr


def test_check_lists_the_layers():
    proc = _cli("check")
    assert proc.returncode == 0, proc.stderr
    for layer in ("net-ns", "mount-ns", "seccomp", "landlock", "rlimits", "fork-per-job"):
        assert layer in proc.stdout
    as_json = json.loads(_cli("check", "--json").stdout)
    assert all({"active", "detail"} <= set(info) for info in as_json.values())


def test_run_job_does_not_see_the_callers_environment(tmp_path):
    assert os.environ.get("AZR_TEST_SECRET")  # set by conftest, inherited by the CLI process
    verdict, _ = _run_file(tmp_path, "import os\nprint(sorted(os.environ.items()))\n")
    assert verdict["status"] == "ok"
    assert "AZR_TEST_SECRET" not in verdict["stdout"] and os.environ["AZR_TEST_SECRET"] not in verdict["stdout"]


def test_bench_runs_and_agrees_with_its_baselines():
    proc = _cli("bench", "--jobs", "60", "--rss-jobs", "60", "--fresh-jobs", "10", "--repeats", "2", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    for row in ("sandbox", "fresh_interpreter", "persistent_pool"):
        assert report[row]["jobs_per_s"] > 0 and report[row]["p50_ms"] > 0
    assert len(report["sandbox"]["passes"]) == 2
    assert report["agreement"] == {"with_fresh": 1.0, "with_pool": 1.0}
    assert report["sandbox"]["statuses"] == {"ok": 60}
    if report["sandbox"]["fork_loop"] == "c":
        assert report["sandbox_python_loop"]["agree"] is True
