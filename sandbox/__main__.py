"""Command line: ``python -m sandbox run FILE | check | bench``.

``run`` prints exactly one JSON verdict on stdout; nothing the job prints reaches stdout except
inside that JSON. The exit code is 0 whenever a verdict was produced.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from sandbox.pool import Job, Sandbox, SandboxError


def _run(args: argparse.Namespace) -> int:
    try:
        with open(args.file, encoding="utf-8", errors="surrogateescape") as fh:
            program = fh.read()
    except OSError as exc:
        print(f"sandbox run: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return 2
    try:
        with Sandbox(workers=1, timeout_s=args.timeout, memory_mb=args.memory_mb) as sb:
            res = sb.evaluate_many([Job(program, (), mode="main", capture_output=True, filename=args.file)])[0]
            layers = sb.active_layers
    except (SandboxError, ValueError) as exc:
        print(f"sandbox run: {exc}", file=sys.stderr)
        return 2
    verdict = {
        "status": res.status, "error": res.error, "duration_s": round(res.duration_s, 6),
        "stdout": res.stdout, "stdout_truncated": res.stdout_truncated,
        "stderr": res.stderr, "stderr_truncated": res.stderr_truncated, "layers": layers,
    }
    sys.stdout.write(json.dumps(verdict) + "\n")
    return 0


def _check(args: argparse.Namespace) -> int:
    with Sandbox(workers=1) as sb:
        layers, fork_loop = sb.layers, sb.fork_loop
    if args.json:
        print(json.dumps({**layers, "fork-loop": {"active": fork_loop == "c", "detail": fork_loop}}, indent=2))
        return 0
    width = max(len(k) for k in layers)
    print("sandbox isolation layers on this machine:")
    for name, info in layers.items():
        mark = {True: "ON ", False: "OFF", None: "n/a"}[info["active"]]
        print(f"  {mark}  {name:<{width}}  {info['detail']}")
    off = [k for k, v in layers.items() if v["active"] is False]
    on = [k for k, v in layers.items() if v["active"]]
    applicable = len(on) + len(off)
    print(f"{len(on)} of {applicable} applicable layers active" + (f"; DEGRADED, off: {', '.join(off)}" if off else ""))
    print("fork loop: " + ("C (sandbox/_forkloop.c)" if fork_loop == "c" else
                           "Python (the C loop is not built: reinstall with a C compiler; ~1.2x the CPU per job)"))
    return 0


def _bench(args: argparse.Namespace) -> int:
    from sandbox.bench import run_bench

    run_bench(jobs=args.jobs, workers=args.workers, rss_jobs=args.rss_jobs, fresh_jobs=args.fresh_jobs,
              as_json=args.json, repeats=args.repeats)
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(name)s: %(message)s")
    p = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="run FILE as __main__ in the sandbox and print a JSON verdict")
    r.add_argument("file")
    r.add_argument("--timeout", type=float, default=5.0, help="wall-clock seconds (default 5)")
    r.add_argument("--memory-mb", type=int, default=512, help="memory budget in MiB (default 512)")
    c = sub.add_parser("check", help="print the isolation layers in force on this machine")
    c.add_argument("--json", action="store_true")
    b = sub.add_parser("bench", help="throughput and latency vs. a fresh interpreter and a persistent pool")
    b.add_argument("--jobs", type=int, default=2000)
    b.add_argument("--workers", type=int, default=2)
    b.add_argument("--rss-jobs", type=int, default=10_000)
    b.add_argument("--fresh-jobs", type=int, default=None, help="subsample for the slow baseline")
    b.add_argument("--repeats", type=int, default=3, help="timed passes of the sandbox over the jobs (median)")
    b.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    return {"run": _run, "check": _check, "bench": _bench}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
