#!/usr/bin/env bash
# A GPU run through `accelerate launch`: one process per GPU (data parallel, configs/accelerate/ddp.yaml).
# Usage: NUM_GPUS=8 scripts/train_gpu.sh configs/qwen2.5-coder-7b.yaml [overrides...]
set -euo pipefail
cd "$(dirname "$0")/.."
CONFIG="${1:-configs/qwen2.5-7b.yaml}"
shift || true
NUM_GPUS="${NUM_GPUS:-$(python -c 'import torch; print(max(1, torch.cuda.device_count()))')}"
exec accelerate launch --config_file configs/accelerate/ddp.yaml --num_processes "$NUM_GPUS" \
    -m azr train "$CONFIG" "$@"
