#!/bin/bash
# What the layer-wise label critic sees, measured: the six-conv VGG on CIFAR-10 10 % (5000
# images, 20 % of them the validation split), crop + flip, beta 0.012 (the full set's 600 / N),
# 20 epochs per unit, once per --y-pool value given (0: flattened maps, the default; K: each
# channel averaged over a K x K grid). Compare the read-out's validation accuracy
# (metrics.jsonl, "stage": "validation", "unit": "read-out"); the test accuracy is the
# "final" record. A measurement, not a test: about 30-40 min of one CPU thread per value
# before the final MI report (which the comparison does not need).
#
#   LAYERIB_DATA_ROOT=../shared/data bash benchmarks/label_view_cifar10_vgg.sh OUT 0 4
out=${1:?usage: label_view_cifar10_vgg.sh OUT POOL [POOL ...]}; shift
mkdir -p "$out"
for p in "$@"; do
  OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} python3 -m layerib train \
    --dataset cifar10 --train-fraction 0.1 --arch vgg --channels 64,64,128,128,256,256 --widths 10 \
    --method ib --augment crop_flip --epochs-per-layer 20 --min-steps-per-layer 0 --readout-epochs 10 \
    --val-fraction 0.2 --val-refit false --evals-per-layer 2 --mi-restarts 1 --mi-baseline false \
    --mi-max-steps 300 --offline --no-progress --beta 0.012 --seed 0 --y-pool "$p" \
    --out "$out/pool$p" > "$out/pool$p.log" 2>&1
  python3 - "$out/pool$p/metrics.jsonl" "$p" <<'PY'
import json, sys
best, final = {}, {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r.get("stage") == "validation":
        k = r.get("layer", r.get("unit"))
        best[k] = max(best.get(k, 0.0), r["val_accuracy"])
    elif r.get("stage") == "final":
        final = r
print(f"y_pool {sys.argv[2]}: best validation accuracy per stage {best}; "
      f"test accuracy {final.get('test_accuracy')}")
PY
done
