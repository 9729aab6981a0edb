#!/usr/bin/env bash
# The GPU checks of issues #2-#4 as one prepared command for a lent GPU machine (one H100 / H200, at most
# 10 minutes a command, no torch-sparse there). In order, each step capped so that the whole run ends in
# about BUDGET seconds:
#   1. the device-parametrised tests on CUDA (sparse tables, SparseLinear, DSL, metrics, models);
#   2. Gowalla LightGCN with the large-batch recipe (docs/results.md §1): dense, then under DSL
#      at 80% and 50% sparsity, each stopped at its share of the time (resume with --resume);
#   3. speed: dslgraph vs a plain PyG LightGCN loop, the DSL backends, SparseLinear vs masked.
# Results land in $OUT (the device tool's return folder; ./gpu-out elsewhere) as six files.
#
# With the device tool, from the repository root (the Gowalla files travel through the data/ link):
#   run(command="bash benchmarks/gpu_session.sh", timeout_s=600,
#       carry=["data/gowalla/raw/train.txt", "data/gowalla/raw/test.txt"])
# Rehearse it on the CPU with a small dataset: DEVICE=cpu DATASET=lastfm BUDGET=120 bash benchmarks/gpu_session.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-gpu-out}"
DEVICE="${DEVICE:-cuda}"
DATASET="${DATASET:-gowalla}"
BUDGET="${BUDGET:-540}"
# The large-batch recipe (one full-graph propagation serves 16,384 samples; the DSL authors' lr): on CPU its dense
# run plateaued at Recall@20 0.170 (docs/results.md §1), so it times the GPU and sweeps sparsity; the 0.180
# reproduction needs the longer schedule given there.
RECIPE="${RECIPE:---epochs 150 --eval-every 10 --lr 0.01 --lr-schedule cosine --batch-size 16384 --init xavier}"
SPARSITIES="${SPARSITIES:-0 0.8 0.5}"  # dense first: the reference of the other two
UPDATE_INTERVAL="${UPDATE_INTERVAL:-100}"
export PYTHONUNBUFFERED=1 TQDM_DISABLE=1
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # runs from the checkout even where the install below fails
mkdir -p "$OUT"
start=$SECONDS
left() { echo $((BUDGET - (SECONDS - start))); }
cap() { echo $(($1 < 10 ? 10 : $1)); }  # timeout needs a positive limit

python -m pip install -q --no-deps --no-build-isolation -e . 2>&1 | tail -1
{
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null
    python -c "import torch, torch_geometric; print('torch', torch.__version__, 'pyg', torch_geometric.__version__)"
    python -c "import torch_sparse" 2>/dev/null && echo "torch-sparse: installed" || echo "torch-sparse: absent"
} 2>&1 | tee "$OUT/tests.log"

echo "== tests on $DEVICE ($(left)s left)"
timeout 120 python -m pytest -q -k "$DEVICE" tests 2>&1 | tee -a "$OUT/tests.log" | tail -5

echo "== $DATASET: LightGCN at sparsity $SPARSITIES ($(left)s left)"
runs=($SPARSITIES)
train_end=$((SECONDS + $(left) * 55 / 100))
for i in "${!runs[@]}"; do
    sparsity=${runs[$i]}
    share=$(cap $(((train_end - SECONDS) / (${#runs[@]} - i))))  # what earlier runs left over rolls on
    flags=()
    [[ $sparsity != 0 ]] && flags=(--sparsity "$sparsity" --update-interval "$UPDATE_INTERVAL")
    timeout "$(cap $((share + 90)))" python -m dslgraph train --dataset "$DATASET" --root data $RECIPE "${flags[@]}" \
        --device "$DEVICE" --max-seconds "$share" --output "runs/gpu-session/s$sparsity" 2>&1 |
        tr '\r' '\n' | grep -a -v 'it/s' | tee -a "$OUT/train.log" | tail -2
done
python - "$OUT/train_metrics.json" runs/gpu-session/s*/metrics.json <<'PY'
import json, pathlib, sys
runs = {pathlib.Path(p).parent.name: json.loads(pathlib.Path(p).read_text()) for p in sys.argv[2:]}
pathlib.Path(sys.argv[1]).write_text(json.dumps(runs, indent=1))
PY

echo "== speed ($(left)s left)"
timeout "$(cap $(($(left) * 45 / 100)))" python benchmarks/bench_lightgcn.py --dataset "$DATASET" --root data \
    --device "$DEVICE" --iterations 20 --output "$OUT/lightgcn_speed.csv" 2>&1 | tail -4
timeout "$(cap $(($(left) * 70 / 100)))" python benchmarks/bench_sparse.py --dataset "$DATASET" --root data \
    --device "$DEVICE" --iterations 20 --output "$OUT/backends.csv" 2>&1 | tail -4
timeout "$(cap $(($(left) - 5)))" python benchmarks/bench_sparse_linear.py --device "$DEVICE" \
    --output "$OUT/sparse_linear.csv" 2>&1 | tail -4
echo "== done in $((SECONDS - start))s"
