#!/usr/bin/env bash
# The lever the CPU could not try for digit69's cs target (pixel correlation 0.85 at 28 px): a pixel prior at
# the stimuli's own 28 px, trained several times longer, on a GPU. Everything else is configs/digit69.yaml
# (CS settings and candidates chosen on held-out training folds, never on the test set); one sampling seed.
#
# On the lent machine, from the repository root, with the data copied into an ignored folder and carried:
#   mkdir -p .device-data && cp -r ../shared/data/digit69 ../shared/data/mnist .device-data/
#   echo /.device-data/ >> .git/info/exclude
#   (device run, carry [".device-data"]) DATA=.device-data CACHE=.device-data/cache bash benchmarks/gpu_digit69_prior.sh
# The prior's training resumes from its checkpoint in CACHE: a call cut off by its time limit is finished by the
# same command on the still-warm machine (ignored folders stay there between calls).
# Here, to check the script itself on the CPU in a few minutes:
#   DEVICE=cpu STEPS=20 EXTRA=300 SAMPLING_STEPS=3 INSTALL=0 bash benchmarks/gpu_digit69_prior.sh
# Writes $OUT (default ./results): the derived config, the run's log, metrics and the 28 px scores.
set -euo pipefail
OUT="${OUT:-results}"; DATA="${DATA:-../shared/data}"; DEVICE="${DEVICE:-cuda}"
STEPS="${STEPS:-12000}"; SIZE="${SIZE:-28}"; EXTRA="${EXTRA:-60000}"; SEEDS="${SEEDS:-[0]}"
SAMPLING_STEPS="${SAMPLING_STEPS:-50}"; CACHE="${CACHE:-$OUT/cache}"
mkdir -p "$OUT"
if [ "${INSTALL:-1}" = 1 ]; then
  python3 -m venv /tmp/gess-venv && . /tmp/gess-venv/bin/activate
  pip install -q torch==2.14.1 torchvision==0.29.1 && pip install -q -e . 2>&1 | tail -1
fi
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total --format=csv > "$OUT/device.txt" || true
DATA_ABS="$(cd "$DATA" && pwd)"
python - "$OUT/digit69_prior.yaml" <<EOF
import sys, yaml
cfg = yaml.safe_load(open("configs/digit69.yaml"))
cfg["device"] = "$DEVICE"
cfg["dataset"]["path"] = "$DATA_ABS/digit69/digit69_28x28.mat"
cfg["dataset"]["extra_images"] = "$DATA_ABS/mnist/mnist_minus_digit69_test.npz"
cfg["generator"]["training"].update(steps=$STEPS, image_size=$SIZE, max_extra_images=$EXTRA)
cfg["seeds"] = $SEEDS
cfg["sampling"]["steps"] = $SAMPLING_STEPS
cfg["methods"] = ["structure", "semantic", "cs"]
yaml.safe_dump(cfg, open(sys.argv[1], "w"), sort_keys=False)
EOF
start=$(date +%s)
GESS_CACHE="$CACHE" gess run "$OUT/digit69_prior.yaml" --out "$OUT/run" 2>&1 | tee "$OUT/run.log"
echo "gess run: $(( $(date +%s) - start )) s" | tee -a "$OUT/run.log"
python benchmarks/score_digit69_run.py "$OUT/run" --data "$DATA_ABS/digit69/digit69_28x28.mat" \
  --mnist "$DATA_ABS/mnist/mnist_minus_digit69_test.npz" --json "$OUT/scores_28px.json" | tee "$OUT/scores_28px.txt"
rm -rf "$OUT/cache" "$OUT/run/model"  # what comes back: the figures, the log and the PNGs (CACHE outside $OUT stays)
