#!/usr/bin/env bash
# A GPU run through `accelerate launch` (one process per GPU is the scale-out issue's job; today one
# process drives one GPU). Usage: scripts/train_gpu.sh configs/qwen2.5-coder-7b.yaml [overrides...]
set -euo pipefail
cd "$(dirname "$0")/.."
CONFIG="${1:-configs/qwen2.5-7b.yaml}"
shift || true
exec accelerate launch --num_processes 1 --mixed_precision bf16 -m azr.cli train "$CONFIG" "$@"
