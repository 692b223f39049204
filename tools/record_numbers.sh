#!/bin/bash
# The numbers a refactoring must not change, recorded into DIR (about 3 min on 2 cores): bash tools/record_numbers.sh DIR
# then python3 tools/compare_numbers.py BEFORE AFTER. Needs the dlib crops (facegate prepare --backbone dlib_resnet --crops .crops150).
set -e
D=$(realpath -m "$1"); mkdir -p "$D"; cd "$(dirname "$0")/.."; F=.venv/bin/facegate; export FACEGATE_DATA=../shared/datasets
$F evaluate ../shared/datasets/lfw/pairsDevTest.txt --images ../shared/datasets/lfw/lfw-deepfunneled \
  --people ../shared/datasets/lfw/peopleDevTest.txt --identification --json $D/lfw_pairsDevTest.json 2>/dev/null > $D/evaluate.txt
$F demo --out $D/demo 2>/dev/null > $D/demo.txt
$F evaluate-gate --employees 12 --strangers 18 --out $D/gate-small 2>/dev/null > $D/gate-small.txt
rm -rf $D/study-cache
$F study --model gate/models/default.json --set ks=1,2 --set employees=4 --set strangers=4 --set test_photos=2 --set stranger_photos=3 \
  --set samples=32 --set pool_frames=16 --set frame_width=64 --set frame_height=48 --allow-seen --crops .crops150/pins.npz \
  --cache $D/study-cache --out $D/study --quiet 2>/dev/null > $D/study.txt
echo recorded $D
