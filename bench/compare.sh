#!/usr/bin/env bash
# Benchmarks before and after a change, in one sitting: each script's quick form on
# revision A, then on B, back to back, from worktrees of each (the project's venv runs
# both; PYTHONPATH picks the tree). Prints where each run's output went.
#   bash bench/compare.sh b186818 main                      # the four quick forms
#   bash bench/compare.sh HEAD~1 HEAD "bench_tasks --quick --no-peers --backends sqlite"
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { echo "usage: bench/compare.sh REV_A REV_B ['bench_x options' ...]" >&2; exit 2; }
a=$1 b=$2; shift 2
specs=("$@")
[ ${#specs[@]} -gt 0 ] || specs=("bench_tasks --quick --no-peers" "bench_events --quick --no-peers"
                                 "bench_registry --seconds 3" "bench_locks --seconds 1.5")
for rev in "$a" "$b"; do
  git rev-parse --verify --quiet "$rev^{commit}" >/dev/null || { echo "not a revision: $rev" >&2; exit 2; }
done
py=$PWD/.venv/bin/python
out=$(mktemp -d /tmp/agentos-compare.XXXX)
trees=()
cleanup() { for t in "${trees[@]}"; do git worktree remove --force "$t" >/dev/null 2>&1 || true; done; }
trap cleanup EXIT
for rev in "$a" "$b"; do
  tree=$out/tree-$(git rev-parse --short "$rev")
  git worktree add --quiet --detach "$tree" "$rev"
  trees+=("$tree")
done
n=0
for spec in "${specs[@]}"; do
  read -r -a words <<<"$spec"
  name=${words[0]} n=$((n + 1))
  for i in 0 1; do
    tree=${trees[$i]} rev=$([ $i = 0 ] && echo "$a" || echo "$b")
    log=$out/$n-$name.$(basename "$tree").txt  # numbered: a spec may come twice
    echo "$(date +%T) $name on $rev (load $(cut -d' ' -f1 /proc/loadavg)) -> $log"
    (cd "$tree" && PYTHONPATH=$tree/src timeout 900 "$py" "bench/$name.py" "${words[@]:1}" \
      >"$log" 2>&1) || echo "  exited $? (see the log)"
  done
done
echo "outputs in $out"
