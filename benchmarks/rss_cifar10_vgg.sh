#!/bin/bash
# Peak resident memory of a short CIFAR-10 VGG layer-wise IB run with augmentation, all
# 50000 training images (49000 after the 2 % validation split), by /usr/bin/time -v.
# The steps are few (near-zero learning rates: early stopping ends each stage after a few
# checks; a held-out evaluation every step), so it costs minutes, but every frozen output
# (test-set caches, every layer's training features for the read-out and the MI report)
# is computed on the full set, which is what bounds memory. A measurement, not a test:
#
#   LAYERIB_DATA_ROOT=../shared/data bash benchmarks/rss_cifar10_vgg.sh OUT [extra flags]
out=${1:?usage: rss_cifar10_vgg.sh OUT [flags]}; shift
OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} /usr/bin/time -v python3 -m layerib train \
  --dataset cifar10 --arch vgg --channels 64,64,128,128,256,256 --widths 10 --method ib \
  --augment crop_flip --epochs-per-layer 1 --min-steps-per-layer 0 --readout-epochs 1 \
  --mi-restarts 1 --mi-baseline false --mi-max-steps 200 --offline --no-progress \
  --val-fraction 0.02 --patience 1 --val-checks 1000 --evals-per-layer 200 \
  --lr-layer 1e-12 --lr-critic 1e-12 --val-metric accuracy --val-refit false --out "$out" "$@" 2>&1 | tee "$out.log" | grep -E "Maximum resident|Elapsed"
