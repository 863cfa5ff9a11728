#!/bin/bash
# Steps 1-2 of staging/README.md for a trained candidate: its judges on its VAE, then its base bars with those judges
# in a throwaway worktree, and its FID reference. Run from the repository root, with nothing else running:
#   staging/judge_candidate.sh v5b        (needs staging/base-v5b/; writes staging/judges-v5b/,
#                                          staging/fid_reference-v5b.npz and staging/check-v5b-base.json)
#   staging/judge_candidate.sh v5c v5b    (v5c shares v5b's VAE, so v5b's judges are its judges: none are trained)
source "$(dirname "$0")/candidate_worktree.sh"
if [ "$judges" = "$name" ]; then
  "$py" -c "
from hubkit_micro.train_judges import train_judges
m = train_judges('staging/judges-$name', vae_dir='$base/vae')
print('judges:', m['timings'])"
else
  # judges are trained on a VAE's reconstructions: another candidate's judges are this one's only if the VAE is the same
  cmp "$base/vae/diffusion_pytorch_model.safetensors" "staging/base-$judges/vae/diffusion_pytorch_model.safetensors" \
    || { echo "$name's VAE is not $judges's: train its own judges (staging/judge_candidate.sh $name)"; exit 2; }
fi
enter_worktree
"$py" -c "from hubkit_micro.fid_reference import write_fid_reference; from hubkit_micro import paths
write_fid_reference(paths.PROMPTS)"
cp hubkit_micro/prompts/micro_scenes/fid_reference.npz "$root/staging/fid_reference-$name.npz"
"$root/.venv/bin/hubkit" micro check --only vae --only base --only description > "$root/staging/check-$name-base.json.part"
mv "$root/staging/check-$name-base.json.part" "$root/staging/check-$name-base.json"
"$py" -c "
import json; d = json.load(open('$root/staging/check-$name-base.json'))
print('all_ok', d['all_ok']); [print('FAILS', k, v['value'], v['bar']) for k, v in d.items() if isinstance(v, dict) and not v['ok']]"
