"""Does self-play learn? Solve rates on a fixed held-out task set before and after the default run.

For each seed: measure the embedded model's solve rate on held-out tasks of each type (programs from
the grammar's held-out split, never in the warm-up corpus or a training buffer), run `azr train`
with that seed, measure again with the same sampling seed, and report the change. Over several seeds
it prints the mean change and its spread (std over seeds), plus proposer validity and learnability
over steps, from each run's metrics.jsonl.

    python scripts/measure_learning.py --seeds 0 1 2 [overrides...]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from azr.buffer.store import TaskBuffer  # noqa: E402
from azr.config import load_config  # noqa: E402
from azr.embedded import resolve_model_path  # noqa: E402
from azr.embedded.heldout import heldout_tasks  # noqa: E402
from azr.embedded.probe import solve_rate  # noqa: E402
from azr.metrics import read_metrics  # noqa: E402
from azr.selfplay import train  # noqa: E402
from sandbox import Sandbox  # noqa: E402


def rates(model_dir: str, sb: Sandbox, tasks: dict, samples: int, seed: int, max_new: int) -> dict[str, float]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    return {kind: solve_rate(model, tok, sb, ts, n_samples=samples, seed=seed, max_new_tokens=max_new)
            for kind, ts in tasks.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default=str(ROOT / "configs" / "tiny.yaml"))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--per-type", type=int, default=48, help="held-out tasks per type")
    p.add_argument("--samples", type=int, default=4, help="sampled answers per held-out task")
    p.add_argument("--out", default="", help="keep the runs here (default: a temporary directory)")
    p.add_argument("overrides", nargs="*", help="dotted config overrides, e.g. trainer.max_steps=10")
    args = p.parse_args()
    torch.set_num_threads(2)
    base = load_config(args.config, args.overrides)
    start_model = resolve_model_path(base.model.name_or_path)
    root = Path(args.out or tempfile.mkdtemp(prefix="azr-learning-"))
    with Sandbox(workers=2, timeout_s=base.sandbox.timeout_s, memory_mb=base.sandbox.memory_mb) as sb:
        tasks = heldout_tasks(sb, n_per_type=args.per_type, n_inputs=base.tasks.induction_inputs,
                              n_shown=base.tasks.induction_shown)
        tasks = {k: v for k, v in tasks.items() if k in base.tasks.types}
        max_new = base.generation.max_new_tokens_solve
        rows = []
        for seed in args.seeds:
            before = rates(start_model, sb, tasks, args.samples, seed, max_new)
            cfg = load_config(args.config, [*args.overrides, f"trainer.seed={seed}",
                                            f"trainer.output_dir={root / f'seed-{seed}'}", "trainer.report_to=[none]"])
            final = train(cfg)
            after = rates(str(final / "model"), sb, tasks, args.samples, seed, max_new)
            with TaskBuffer(final / "buffer.sqlite", readonly=True) as buf:
                leaked = sum(buf.find(t) is not None for ts in tasks.values() for t in ts)
            metrics = read_metrics(root / f"seed-{seed}" / "metrics.jsonl")
            rows.append({"seed": seed, "before": before, "after": after, "heldout_in_buffer": leaked,
                         "metrics": metrics})
    print(f"\nheld-out: {args.per_type} tasks per type x {args.samples} samples, T=1.0; seeds {args.seeds}; "
          f"runs in {root}")
    print(f"{'type':<11}{'before':>10}{'after':>10}{'change':>10}{'spread':>10}   per seed")
    summary = {}
    for kind in tasks:
        deltas = [r["after"][kind] - r["before"][kind] for r in rows]
        mean = statistics.mean(deltas)
        spread = statistics.stdev(deltas) if len(deltas) > 1 else float("nan")
        summary[kind] = {"change": mean, "spread": spread}
        b = statistics.mean(r["before"][kind] for r in rows)
        a = statistics.mean(r["after"][kind] for r in rows)
        print(f"{kind:<11}{b:>10.3f}{a:>10.3f}{mean:>+10.3f}{spread:>10.3f}   "
              + " ".join(f"{d:+.3f}" for d in deltas))
    print("\nproposer validity / learnability over steps (mean over seeds):")
    steps = sorted({m["step"] for r in rows for m in r["metrics"]})
    for step in steps:
        parts = []
        for kind in tasks:
            vals = [m.get(f"propose/{kind}/valid_rate") for r in rows for m in r["metrics"] if m["step"] == step]
            learn = [m.get(f"propose/{kind}/learnability") for r in rows for m in r["metrics"] if m["step"] == step]
            vals, learn = [v for v in vals if v is not None], [v for v in learn if v is not None]
            if vals:
                parts.append(f"{kind[:3]} valid {statistics.mean(vals):.2f} learn {statistics.mean(learn):.2f}")
        print(f"  step {step:>3}: " + "; ".join(parts))
    print(f"\nheld-out tasks found in any training buffer: {sum(r['heldout_in_buffer'] for r in rows)}")
    (root / "learning.json").write_text(json.dumps({"summary": summary, "runs": [
        {k: v for k, v in r.items() if k != "metrics"} for r in rows]}, indent=2))


if __name__ == "__main__":
    main()
