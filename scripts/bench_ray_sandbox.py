"""The Ray-backed sandbox against the local pool, on this machine, in one process.

Runs the same small realistic jobs (``sandbox.bench.make_jobs``: AZR-style programs, one call
each) through the local pool and through ``RaySandbox`` with 1, 2, ... actors (one worker each),
checks that every backend gives the same answers, and prints jobs/s, single-job latency, the
overhead ratio local/Ray at equal workers, and jobs/s against the number of actors.

    PYTHONPATH=. python scripts/bench_ray_sandbox.py [--jobs 2000] [--actors 1,2] [--address auto]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import time

import ray

from sandbox import Job, Result, Sandbox
from sandbox.bench import make_jobs
from sandbox.ray_pool import RaySandbox


def _measure(sb: Sandbox | RaySandbox, work: list[Job], repeat: int, single: int) -> dict:
    """Best-of-``repeat`` throughput over ``work`` (the machine is shared) and the p50/p99 of
    one-job round trips."""
    sb.evaluate_many(work[:50])  # warm up: imports, actor queues, page cache
    best, results = 0.0, []
    for _ in range(repeat):
        t = time.perf_counter()
        results = sb.evaluate_many(work)
        best = max(best, len(work) / (time.perf_counter() - t))
    lat = []
    for job in work[:single]:
        t = time.perf_counter()
        sb.evaluate_many([job])
        lat.append(time.perf_counter() - t)
    lat.sort()
    return {"jobs_per_s": best, "p50_ms": 1e3 * statistics.median(lat),
            "p99_ms": 1e3 * lat[min(len(lat) - 1, int(0.99 * len(lat)))],
            "answers": [_answer(r) for r in results]}


def _answer(r: Result) -> str:
    return r.values[0].text if r.ok else r.status


def main() -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=2000)
    ap.add_argument("--actors", default="1,2", help="comma-separated actor counts for the Ray pool")
    ap.add_argument("--local-workers", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3, help="timed passes per backend; the best counts")
    ap.add_argument("--single", type=int, default=200, help="one-job round trips for the latency figures")
    ap.add_argument("--address", default=None, help="a running Ray cluster ('auto', host:port); default: local")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    counts = [int(x) for x in args.actors.split(",")]
    cpus = os.cpu_count() or 1
    work = make_jobs(args.jobs)

    if args.address:
        ray.init(address=args.address, logging_level=logging.WARNING)
    else:  # one local Ray for all the pools below, sized so that every actor gets a CPU slot
        ray.init(address="local", num_cpus=max([cpus, *counts]), include_dashboard=False,
                 logging_level=logging.WARNING, log_to_driver=False)
    report: dict = {"jobs": args.jobs, "cpus": cpus, "ray_cluster_cpus": ray.cluster_resources().get("CPU")}
    with Sandbox(workers=args.local_workers, timeout_s=5.0, memory_mb=256) as sb:
        report["local"] = {"workers": args.local_workers, **_measure(sb, work, args.repeat, args.single)}
    report["ray"] = {}
    for n in counts:
        with RaySandbox(workers=n, timeout_s=5.0, memory_mb=256) as sb:
            report["ray"][n] = {"workers": n, **_measure(sb, work, args.repeat, args.single)}
    ray.shutdown()

    truth = report["local"].pop("answers")
    for row in report["ray"].values():
        answers = row.pop("answers")
        row["agree_with_local"] = sum(a == b for a, b in zip(answers, truth)) / len(truth)
    local = report["local"]
    same = report["ray"].get(args.local_workers)
    if same:
        report["overhead_local_over_ray"] = local["jobs_per_s"] / same["jobs_per_s"]
    base = report["ray"][counts[0]]["jobs_per_s"]
    report["scaling"] = {n: row["jobs_per_s"] / base for n, row in report["ray"].items()}

    if args.json:
        print(json.dumps(report, indent=2))
        return report
    print(f"{args.jobs} jobs from sandbox.bench.make_jobs; this machine has {cpus} cores "
          f"(so growth beyond {cpus} actors cannot show here); best of {args.repeat} passes")
    print(f"{'backend':<26}{'workers':>8}{'jobs/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'agree':>8}")
    print(f"{'local pool':<26}{local['workers']:>8}{local['jobs_per_s']:>10.0f}{local['p50_ms']:>9.2f}"
          f"{local['p99_ms']:>9.2f}{'-':>8}")
    for n, row in report["ray"].items():
        print(f"{f'ray, {n} actor(s)':<26}{n:>8}{row['jobs_per_s']:>10.0f}{row['p50_ms']:>9.2f}"
              f"{row['p99_ms']:>9.2f}{row['agree_with_local']:>8.1%}")
    if same:
        print(f"overhead at {args.local_workers} workers: local / ray = {report['overhead_local_over_ray']:.2f}x "
              "(jobs/s)")
    print("ray jobs/s vs actors: " + ", ".join(
        f"{n}: {row['jobs_per_s']:.0f} ({report['scaling'][n]:.2f}x)" for n, row in report["ray"].items()))
    return report


if __name__ == "__main__":
    main()
