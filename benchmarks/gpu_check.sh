#!/usr/bin/env bash
# One GPU check: the CAM and analysis benchmarks on CUDA plus a training-throughput comparison
# (fp32 vs mixed precision + channels_last). Prints one Markdown report on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
"$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device')"
echo "## CAM paths on $("$PY" -c 'import torch; print(torch.cuda.get_device_name(0))')"
"$PY" benchmarks/bench_cam.py --device cuda --n 512 --size 224 --batch 128 \
    --out /tmp/gpu_results.md >/dev/null
cat /tmp/gpu_results.md
echo
echo "## Training throughput (ResNet34 + CAM head)"
"$PY" benchmarks/train_throughput.py --size 512 --batch 32
echo
echo "## Default analysis of an imported ResNet50 (37 classes, 224 px, 64 images)"
"$PY" benchmarks/bench_analysis.py --device cuda --out /tmp/gpu_results.md >/dev/null
sed -n '/<!-- bench_analysis -->/,/<!-- \/bench_analysis -->/p' /tmp/gpu_results.md | sed '1d;$d'
