#!/usr/bin/env bash
# The default CPU run: builds the embedded tiny model on first use, then self-play with configs/tiny.yaml.
# Extra arguments are dotted overrides, e.g. scripts/train_tiny_cpu.sh trainer.max_steps=20
set -euo pipefail
cd "$(dirname "$0")/.."
exec azr train configs/tiny.yaml "$@"
