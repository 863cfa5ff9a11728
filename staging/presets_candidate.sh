#!/bin/bash
# Step 3 of staging/README.md, measured before anything ships: a judged candidate's presets, rebuilt on it in a
# throwaway worktree, then the unlearned and rebuild bars. Run from the repository root with nothing else running
# (each preset's training seconds are part of the rebuild bar):
#   staging/presets_candidate.sh v5c v5b   (base staging/base-v5c/, judges and FID reference of v5b; writes
#                                           staging/presets-v5c/<preset>/hubkit.json and staging/check-v5c-presets.json)
source "$(dirname "$0")/candidate_worktree.sh"
for f in "staging/judges-$judges/metrics.json" "staging/fid_reference-$judges.npz"; do
  [ -f "$f" ] || { echo "missing $f: train and judge the candidate first (staging/README.md)"; exit 2; }
done
enter_worktree unlearned
cp "$root/staging/fid_reference-$judges.npz" hubkit_micro/prompts/micro_scenes/fid_reference.npz
"$root/.venv/bin/hubkit" micro build --only unlearned
mkdir -p "$root/staging/presets-$name"
for meta in hubkit_micro/weights/unlearned/*/hubkit.json; do
  mkdir -p "$root/staging/presets-$name/$(basename "$(dirname "$meta")")"
  cp "$meta" "$root/staging/presets-$name/$(basename "$(dirname "$meta")")/"
done
"$root/.venv/bin/hubkit" micro check --only unlearned --only rebuild > "$root/staging/check-$name-presets.json.part"
mv "$root/staging/check-$name-presets.json.part" "$root/staging/check-$name-presets.json"
"$py" -c "
import json; d = json.load(open('$root/staging/check-$name-presets.json'))
print('all_ok', d['all_ok']); print('rebuild', d['rebuild.minutes'])
[print('FAILS', k, v['value'], v['bar']) for k, v in d.items() if isinstance(v, dict) and not v['ok']]"
