#!/usr/bin/env bash
# The GPU check in one script (issue 32, item 3): on one H100 it is sized to finish within
# 8 minutes, and writes its figures to the folder given as $1:
#
#   test_device.txt        pytest tests/test_device.py (the GPU tests run where torch sees one)
#   mnist_ib/              the default MNIST IB run (layerib train --dataset mnist --method ib)
#   bench_*.csv, .txt      an IB stage and a CE epoch of the CIFAR-10 nets (vgg, resnet,
#                          airbench) in float32 and bfloat16 (bench_train_speed.py)
#   bench_compile.*        the CE epoch of the torch.compile'd VGG beside the eager one
#                          (compile time, and the speed-up: whether compiling pays)
#   cifar_ib/, cifar_ce/   full CIFAR-10, layer-wise IB and CE on the airbench net, each
#                          within --budget-minutes $GPU_CHECK_BUDGET (default 1.0)
#   steps.tsv              each step's exit status and wall seconds (124: its timeout)
#   figures.md             the figures above in one table (device, threads, accuracies, times)
#
# Usage:
#   LAYERIB_DATA_ROOT=/path/to/data benchmarks/gpu_check.sh OUT_DIR            # on a GPU
#   LAYERIB_DATA_ROOT=/path/to/data benchmarks/gpu_check.sh OUT_DIR --cpu-smoke
#
# The data root must hold MNIST/raw and CIFAR-10 (runs are --offline; default
# ../shared/data beside the repository). --cpu-smoke (or GPU_CHECK_CPU_SMOKE=1) runs every
# piece on the CPU at tiny sizes (1-2 % subsets, a few steps, a 0.2-minute budget) to prove
# the script works where no GPU is lent: its figures mean nothing (torch.compile there
# uses the aot_eager backend, which traces without generating code). It ran so in 3.6
# minutes on a 2-core CPU shared with other jobs (load 5), most of it interpreter start-up,
# loading CIFAR-10 and the runs' MI evaluations on its 10 000 test images; the GPU run has
# not been made yet (no GPU was lent to the session that wrote it).
# Each step has its own timeout, so one slow step cannot hold the rest; a failed step is
# recorded in steps.tsv and the script goes on, exiting 1 at the end if any step failed.
set -uo pipefail
declare -A SIZES

OUT=${1:?usage: benchmarks/gpu_check.sh OUT_DIR [--cpu-smoke]}
SMOKE=${GPU_CHECK_CPU_SMOKE:-0}
[[ "${2:-}" == "--cpu-smoke" ]] && SMOKE=1
ROOT=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
export PYTHONPATH="$ROOT/src:$ROOT/tests${PYTHONPATH:+:$PYTHONPATH}"
export LAYERIB_DATA_ROOT=${LAYERIB_DATA_ROOT:-$ROOT/../shared/data}
PY=${PYTHON:-python3}
BUDGET=${GPU_CHECK_BUDGET:-1.0}

if [[ "$SMOKE" == 1 ]]; then
  DEVICE=cpu
  export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
  MNIST=(--train-fraction 0.01 --epochs-per-layer 1 --min-steps-per-layer 10 --readout-epochs 1
         --mi-restarts 1 --mi-baseline false --mi-max-steps 20 --mi-max-rows 300
         --evals-per-layer 1 --val-fraction 0)
  BENCH=(--n-train 256 --min-steps 2)
  SIZES=([vgg]=8,8,16,16,16,16 [resnet]=8,16,16 [airbench]=8,16,16)
  COMPILE=(--compile-backend aot_eager)  # traces only: inductor's C++ build takes minutes here
  CIFAR=(--train-fraction 0.02 --channels 8,16,16 --mi-restarts 1 --mi-baseline false
         --mi-max-steps 20 --mi-max-rows 300 --evals-per-layer 1 --infoplane-evals 0)
  BUDGET=${GPU_CHECK_BUDGET:-0.2}
  T_TEST=120; T_MNIST=120; T_BENCH=120; T_RUN=120
else
  DEVICE=cuda
  MNIST=()
  BENCH=(--n-train 10000 --min-steps 40)
  SIZES=()
  COMPILE=()
  CIFAR=(--mi-restarts 1 --mi-baseline false --mi-max-steps 1000 --evals-per-layer 2
         --infoplane-evals 0)
  T_TEST=90; T_MNIST=150; T_BENCH=60; T_RUN=150
fi

printf 'step\tstatus\twall_seconds\n' > "$OUT/steps.tsv"
FAILED=0
step() {  # step NAME TIMEOUT_S CMD...: run CMD (stdout+stderr to NAME.txt), time it, record it
  local name=$1 limit=$2; shift 2
  local t0 t1 rc
  t0=$(date +%s%N)
  timeout "$limit" "$@" > "$OUT/$name.txt" 2>&1
  rc=$?
  t1=$(date +%s%N)
  printf '%s\t%s\t%s\n' "$name" "$rc" "$(awk "BEGIN { printf \"%.1f\", ($t1 - $t0) / 1e9 }")" \
    >> "$OUT/steps.tsv"
  [[ $rc == 0 ]] || { FAILED=1; echo "gpu_check: step $name exited $rc (see $OUT/$name.txt)" >&2; }
}

cd "$ROOT"
step test_device "$T_TEST" "$PY" -m pytest -q -p no:cacheprovider tests/test_device.py

step mnist_ib "$T_MNIST" "$PY" -m layerib train --dataset mnist --method ib --device "$DEVICE" \
  --offline --no-progress --force --out "$OUT/mnist_ib" "${MNIST[@]}"

for arch in vgg resnet airbench; do
  for precision in float32 bfloat16; do
    step "bench_${arch}_${precision}" "$T_BENCH" "$PY" benchmarks/bench_train_speed.py \
      --arch "$arch" --precision "$precision" --device "$DEVICE" --augment crop_flip --y-pool 4 \
      ${SIZES[$arch]:+--channels "${SIZES[$arch]}"} "${BENCH[@]}" \
      --out "$OUT/bench_${arch}_${precision}.csv"
  done
done
step bench_compile "$T_BENCH" "$PY" benchmarks/bench_train_speed.py --arch vgg \
  --device "$DEVICE" --compile "${COMPILE[@]}" ${SIZES[vgg]:+--channels "${SIZES[vgg]}"} "${BENCH[@]}" \
  --out "$OUT/bench_compile.csv"

# full CIFAR-10 at a budget: the same net, augmentation and label view for both methods
COMMON=(--dataset cifar10 --arch airbench --device "$DEVICE" --budget-minutes "$BUDGET"
        --augment crop_flip --precision bfloat16 --lr-schedule cosine --val-fraction 0
        --offline --no-progress --force "${CIFAR[@]}")
step cifar_ib "$T_RUN" "$PY" -m layerib train --method ib --y-pool 4 "${COMMON[@]}" \
  --out "$OUT/cifar_ib"
step cifar_ce "$T_RUN" "$PY" -m layerib train --method ce "${COMMON[@]}" --out "$OUT/cifar_ce"

"$PY" - "$OUT" <<'EOF' > "$OUT/figures.md"
import csv, json, sys
from pathlib import Path
out = Path(sys.argv[1])
steps = {r["step"]: r for r in csv.DictReader((out / "steps.tsv").open(), delimiter="\t")}
print("# gpu_check figures\n")
print("| step | status | wall s | figures |\n|---|---|---|---|")
for name, r in steps.items():
    fig = ""
    res = out / name / "result.json"
    if res.exists():
        d = json.loads(res.read_text())
        m = d.get("machine", {})
        fig = (f"test accuracy {d['test_accuracy']:.4f}, run {d['wall_seconds']:.0f} s, "
               f"{m.get('gpu') or m.get('cpu')}, {m.get('threads')} threads")
        if "budget" in d:
            fig += ", steps " + " ".join(f"{u}:{p['steps']}" for u, p in d["budget"]["stages"].items())
    bench = out / f"{name}.csv"
    if bench.exists():
        b = next(csv.DictReader(bench.open()))
        fig = (f"{b['device']} {b['gpu']} {b['precision']}: IB stages "
               f"{float(b['ib_all_stages_seconds_per_epoch']):.2f} s/epoch in all, largest "
               f"{float(b['ratio_max_stage']):.2f}x CE; CE {float(b['ce_wall_seconds_per_epoch']):.2f} "
               f"wall s/epoch")
        if b.get("compile_seconds"):
            fig += (f"; compiled CE {float(b['ce_compiled_wall_seconds_per_epoch']):.2f} s/epoch "
                    f"({float(b['compile_speedup']):.2f}x), compiling {float(b['compile_seconds']):.0f} s")
    if name == "test_device":
        fig = (out / "test_device.txt").read_text().strip().splitlines()[-1]
    print(f"| {name} | {r['status']} | {r['wall_seconds']} | {fig} |")
EOF
cat "$OUT/figures.md"
exit $FAILED
