# Sourced by judge_candidate.sh and presets_candidate.sh (run from the repository root): the candidate's arguments,
# and a throwaway worktree with the candidate installed, so that its bars are measured by main's code on its weights.
#   $1 candidate name (staging/base-<name>/), $2 whose judges it uses (default: its own, staging/judges-<judges>/)
set -euo pipefail
name=$1
judges=${2:-$name}
root=$(pwd)
py=$root/.venv/bin/python
base=staging/base-$name
[ -f "$base/hubkit.json" ] || { echo "no trained candidate at $base: train it first (staging/train_v5.py $name)"; exit 2; }
export HF_HUB_OFFLINE=1

# enter_worktree <extra weight folders to empty...>: a worktree of HEAD with the candidate's base and judges in place;
# it is removed when the script exits.
enter_worktree() {
  tree=$(mktemp -d "/tmp/candidate-$name.XXXX")
  git worktree add --detach "$tree" HEAD
  trap 'git worktree remove --force "$tree"' EXIT
  rm -rf "$tree/hubkit_micro/weights/base" "$tree/hubkit_micro/weights/judges"
  for extra in "$@"; do rm -rf "$tree/hubkit_micro/weights/$extra"; done
  cp -r "$base" "$tree/hubkit_micro/weights/base"
  cp -r "staging/judges-$judges" "$tree/hubkit_micro/weights/judges"
  cd "$tree"
  export PYTHONPATH=$tree   # before the editable install's finder: the worktree's packages are the ones imported
  "$py" -c "import hubkit_micro; assert hubkit_micro.__file__.startswith('$tree'), hubkit_micro.__file__"
}
