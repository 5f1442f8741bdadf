#!/bin/sh
# CPU training recipes at equal wall time (issue 13): which recipe gains most per CPU-hour.
#
# Each run starts from the untuned base (all-MiniLM-L6-v2), uses the shipped recipe
# (codeneedle/models/needle-code-v3/train_state.stage1.json) with one knob changed, and trains for $MINUTES minutes on
# both cores; then every model is judged by dense MRR@10 on the held-out repositories, beside the untuned base
# and the shipped model (the baselines, same run). The last run adds the extra query styles (name, other doc
# sentences, parameter descriptions) and is also judged on CoSQA dev (web-style questions).
#
# Needs the mined pairs (network: package registries):
#   python scripts/build_training_set.py fetch --work .cache/corpus \
#       --pinned codeneedle/models/needle-code-v3/training_manifest.json --no-debian
#   python scripts/build_training_set.py mine --work .cache/corpus
#   python scripts/build_training_set.py mine --work .cache/corpus --style-mix --out pairs-styles
# Then:  sh bench/cpu_recipes.sh [MINUTES]        (default 8; about 4 x MINUTES + 15 minutes in all)
set -e
cd "$(dirname "$0")/.."
MINUTES=${1:-8}
NEEDLE=.venv/bin/needle
CFG=codeneedle/models/needle-code-v3/train_state.stage1.json
OUT=.cache/cpu-recipes
train() {  # name data code-tokens freeze-layers
  echo "== $1: code cut $3 tokens, --freeze-layers $4, $MINUTES min ($(date +%T))"
  $NEEDLE train --data "$2" --config $CFG --base minilm --out "$OUT/$1" --minutes "$MINUTES" --steps 100000 \
    --threads 2 --code-max-tokens "$3" --freeze-layers "$4" --checkpoint-every 100000 --fresh --json
}
train full-128 .cache/corpus/pairs/train.jsonl 128 0
train full-64 .cache/corpus/pairs/train.jsonl 64 0
train freeze3-128 .cache/corpus/pairs/train.jsonl 128 3
train styles-full-128 .cache/corpus/pairs-styles/train.jsonl 128 0
# Each model beside the untuned base, with ratios (--compare), on both query styles.
for m in needle-code-v3 "$OUT/full-128/model" "$OUT/full-64/model" "$OUT/freeze3-128/model" \
         "$OUT/styles-full-128/model"; do
  echo "== held-out: $m"
  $NEEDLE eval --model "$m" --compare minilm --benchmark heldout --pairs .cache/corpus/pairs --threads 2
done
for m in "$OUT/full-128/model" "$OUT/styles-full-128/model"; do
  echo "== CoSQA dev: $m"
  $NEEDLE eval --model "$m" --compare minilm --benchmark cosqa-dev --threads 2
done
