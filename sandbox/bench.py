"""``python -m sandbox bench``: this sandbox vs. a fresh interpreter per job vs. a persistent pool.

All three run the same small, realistic jobs (AZR-style programs: a function ``f`` and a call on
one input) in one process, and the sandbox's answers are checked against the baselines'. Prints
jobs/s and p50/p99 latency for each, the ratios, and the zygotes' resident memory before and after
a long run. The sandbox's jobs/s is the median of a few passes over the same jobs (this host's
throughput swings ~10% from second to second), interleaved with passes of the same sandbox served
by the zygote's Python loop, which shows what the C loop buys.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing as mp
import os
import random
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from sandbox.pool import Job, Sandbox
from sandbox.values import encode

TEMPLATES = [
    ("def f(s):\n    out = []\n    for i, ch in enumerate(s):\n        out.append(ch * ({k} + i % 3))\n"
     "    return ''.join(out)[::-1]", lambda r: repr("".join(r.choice("abcxyz") for _ in range(r.randint(1, 8))))),
    ("def f(xs):\n    total = 0\n    for x in xs:\n        if x % {k} == 0:\n            total += x\n"
     "        else:\n            total -= 1\n    return total", lambda r: repr([r.randint(-20, 50) for _ in range(r.randint(0, 12))])),
    ("from collections import Counter\n\ndef f(s):\n    c = Counter(s)\n"
     "    return sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))[:{k}]", lambda r: repr("".join(r.choice("aabbcdd") for _ in range(r.randint(1, 15))))),
    ("def f(n):\n    a, b = 0, 1\n    seq = []\n    for _ in range(n % 30):\n        a, b = b, a + b\n"
     "        if a % {k} == 1:\n            seq.append(a)\n    return seq", lambda r: repr(r.randint(0, 60))),
    ("def f(d):\n    res = {{}}\n    for key in sorted(d):\n        res[d[key]] = res.get(d[key], 0) + len(key) * {k}\n"
     "    return res", lambda r: repr({("k" + str(i)): r.randint(0, 3) for i in range(r.randint(0, 6))})),
    ("import math\n\ndef f(xs):\n    xs = sorted(xs)\n    m = len(xs) // 2\n    mid = xs[m] if xs else 0\n"
     "    return (round(math.sqrt(abs(mid) * {k}), 3), xs[:m])", lambda r: repr([r.randint(-9, 99) for _ in range(r.randint(0, 9))])),
    ("def f(matrix):\n    rows = len(matrix)\n    out = [[0] * rows for _ in range(rows)]\n    for i in range(rows):\n"
     "        for j in range(rows):\n            out[j][i] = matrix[i][j] * {k}\n    return out",
     lambda r: (lambda n: repr([[r.randint(0, 9) for _ in range(n)] for _ in range(n)]))(r.randint(1, 4))),
    ("def f(s, t):\n    i = j = 0\n    while i < len(s) and j < len(t):\n        if s[i] == t[j]:\n            j += 1\n"
     "        i += 1\n    return (j == len(t), j * {k})", lambda r: repr("abcde"[: r.randint(1, 5)]) + ", " + repr("ace"[: r.randint(0, 3)])),
]


def make_jobs(n: int, seed: int = 0) -> list[Job]:
    rng = random.Random(seed)
    jobs = []
    for _ in range(n):
        template, make_input = rng.choice(TEMPLATES)
        program = template.format(k=rng.randint(2, 5))
        jobs.append(Job(program, (f"f({make_input(rng)})",)))
    return jobs


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


# ---- baseline 1: a fresh `python -I -S` per job ----------------------------------------------

_FRESH_WRAPPER = (
    "import sys\nsys.path.insert(0, {path!r})\nfrom values import encode\n"
    "ns = {{'__name__': '__job__'}}\nexec(compile({program!r}, '<program>', 'exec'), ns)\n"
    "print(encode(eval({expr!r}, ns)))\n"
)


def _fresh_one(job: Job) -> tuple[str, float]:
    code = _FRESH_WRAPPER.format(path=os.path.dirname(os.path.abspath(__file__)), program=job.program,
                                 expr=job.exprs[0])
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, timeout=30)
    return out.stdout.strip(), time.perf_counter() - t


# ---- baseline 2: a persistent pool that never resets ------------------------------------------


def _pool_one(args: tuple[str, str]) -> tuple[str, float]:
    program, expr = args
    t = time.perf_counter()
    ns: dict = {"__name__": "__job__"}
    exec(compile(program, "<program>", "exec"), ns)  # noqa: S102 - the unsafe baseline, by design
    return encode(eval(expr, ns)), time.perf_counter() - t  # noqa: S307


def _rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


def run_bench(jobs: int = 2000, workers: int = 2, rss_jobs: int = 10_000, fresh_jobs: int | None = None,
              as_json: bool = False, repeats: int = 3) -> dict:
    work = make_jobs(jobs)
    report: dict = {"jobs": jobs, "workers": workers, "cpus": os.cpu_count(), "repeats": repeats}
    lines = []

    with Sandbox(workers=workers, timeout_s=5.0, memory_mb=256) as sb, contextlib.ExitStack() as stack:
        # What the C serving loop buys: the same sandbox served by the zygote's Python loop, timed in
        # passes interleaved with the C loop's so that both see the same machine.
        py = None
        if sb.fork_loop == "c":
            py = stack.enter_context(Sandbox(workers=workers, timeout_s=5.0, memory_mb=256, fork_loop="python"))
            py.evaluate_many(work[:50])
        sb.evaluate_many(work[:50])  # warm up
        passes, py_passes = [], []
        for _ in range(repeats):
            t = time.perf_counter()
            results = sb.evaluate_many(work)
            passes.append(jobs / (time.perf_counter() - t))
            if py is not None:
                t = time.perf_counter()
                py_results = py.evaluate_many(work)
                py_passes.append(jobs / (time.perf_counter() - t))
        lat = []
        for job in work[:300]:
            t1 = time.perf_counter()
            sb.evaluate_many([job])
            lat.append(time.perf_counter() - t1)
        ours = [r.values[0].text if r.ok else r.status for r in results]
        report["sandbox"] = {"jobs_per_s": statistics.median(passes), "passes": passes,
                             "p50_ms": 1e3 * _pct(lat, 0.5), "p99_ms": 1e3 * _pct(lat, 0.99),
                             "layers": sb.active_layers, "fork_loop": sb.fork_loop,
                             "statuses": _count(r.status for r in results)}
        if py is not None:
            report["sandbox_python_loop"] = {
                "jobs_per_s": statistics.median(py_passes), "passes": py_passes,
                "agree": [r.values[0].text if r.ok else r.status for r in py_results] == ours}
            stack.close()
        rss_before = [_rss_kb(p) for p in sb.worker_pids]
        big = make_jobs(rss_jobs, seed=1)
        t = time.perf_counter()
        sb.evaluate_many(big)
        rss_dt = time.perf_counter() - t
        rss_after = [_rss_kb(p) for p in sb.worker_pids]
        report["rss"] = {"jobs": rss_jobs, "start_kb": rss_before, "end_kb": rss_after, "jobs_per_s": rss_jobs / rss_dt}

    n_fresh = fresh_jobs or jobs
    with ThreadPoolExecutor(workers) as ex:
        t = time.perf_counter()
        fresh = list(ex.map(_fresh_one, work[:n_fresh]))
        dt = time.perf_counter() - t
    report["fresh_interpreter"] = {"jobs_per_s": n_fresh / dt, "p50_ms": 1e3 * _pct([x[1] for x in fresh], 0.5),
                                   "p99_ms": 1e3 * _pct([x[1] for x in fresh], 0.99), "jobs": n_fresh}

    ctx = mp.get_context("fork")
    with ctx.Pool(workers) as pool:
        args = [(j.program, j.exprs[0]) for j in work]
        pool.map(_pool_one, args[:50])
        t = time.perf_counter()
        pooled = pool.map(_pool_one, args, chunksize=1)
        dt = time.perf_counter() - t
        lat = []
        for a in args[:300]:
            t1 = time.perf_counter()
            pool.apply(_pool_one, (a,))
            lat.append(time.perf_counter() - t1)
    report["persistent_pool"] = {"jobs_per_s": jobs / dt, "p50_ms": 1e3 * _pct(lat, 0.5), "p99_ms": 1e3 * _pct(lat, 0.99)}

    agree_fresh = sum(a == b[0] for a, b in zip(ours, fresh)) / n_fresh
    agree_pool = sum(a == b[0] for a, b in zip(ours, pooled)) / jobs
    s, f, p = report["sandbox"], report["fresh_interpreter"], report["persistent_pool"]
    report["ratios"] = {"sandbox_vs_fresh": s["jobs_per_s"] / f["jobs_per_s"],
                        "sandbox_vs_pool": s["jobs_per_s"] / p["jobs_per_s"]}
    report["agreement"] = {"with_fresh": agree_fresh, "with_pool": agree_pool}
    if as_json:
        print(json.dumps(report, indent=2))
        return report
    lines.append(f"{jobs} jobs, {workers} workers, {os.cpu_count()} CPUs; sandbox layers: {', '.join(s['layers'])}; "
                 f"fork loop: {s['fork_loop']}")
    lines.append(f"{'executor':<34}{'jobs/s':>10}{'p50 ms':>10}{'p99 ms':>10}")
    for name, row in (("sandbox (fork server, isolated)", s), (f"fresh python -I -S per job (n={n_fresh})", f),
                      ("persistent pool, no reset (unsafe)", p)):
        lines.append(f"{name:<34}{row['jobs_per_s']:>10.0f}{row['p50_ms']:>10.2f}{row['p99_ms']:>10.2f}")
    lines.append(f"ratio sandbox / fresh interpreter: {report['ratios']['sandbox_vs_fresh']:.1f}x; "
                 f"sandbox / persistent pool: {report['ratios']['sandbox_vs_pool']:.2f}x")
    lines.append(f"sandbox jobs/s is the median of {repeats} passes over the same {jobs} jobs: "
                 f"{', '.join(f'{x:.0f}' for x in s['passes'])}")
    lines.append(f"answers agree with fresh interpreter: {agree_fresh:.1%}, with persistent pool: {agree_pool:.1%}")
    if "sandbox_python_loop" in report:
        py = report["sandbox_python_loop"]
        lines.append(f"same sandbox served by the zygote's Python loop (passes interleaved): {py['jobs_per_s']:.0f} "
                     f"jobs/s ({', '.join(f'{x:.0f}' for x in py['passes'])}); C loop / Python loop: "
                     f"{s['jobs_per_s'] / py['jobs_per_s']:.2f}x; answers identical: {py['agree']}")
    r = report["rss"]
    lines.append(f"worker RSS over {r['jobs']} jobs ({r['jobs_per_s']:.0f} jobs/s): start {r['start_kb']} kB, "
                 f"end {r['end_kb']} kB")
    lines.append(f"sandbox statuses: {s['statuses']}")
    print("\n".join(lines))
    return report


def _count(items) -> dict:
    out: dict = {}
    for x in items:
        out[x] = out.get(x, 0) + 1
    return out
