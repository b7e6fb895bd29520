#!/usr/bin/env bash
# Runs each fuzz target for a bounded time, then minimises its corpus, which is kept in the
# repo (fuzz/corpus/TARGET). fuzz/Cargo.lock starts from the main Cargo.lock, so the fuzzed
# dependencies are the shipped ones. Usage: fuzz/run.sh [SECONDS_PER_TARGET (default 150)] [TARGET...]
# Needs `cargo install cargo-fuzz`. cargo-fuzz passes nightly-only sanitizer flags; on a stable
# toolchain RUSTC_BOOTSTRAP=1 allows them. Not part of CI. Crashes land in fuzz/artifacts/.
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-150}
shift || true
if [ $# -gt 0 ]; then targets=("$@"); else targets=(inventory render); fi
export RUSTC_BOOTSTRAP=1

# Read-only seeds besides the corpus: the repo's own inventories for the loader.
seeds() {
    case $1 in
        inventory) echo ../inventories ../tests/inventories/good ../tests/inventories/bad ;;
        *) ;;
    esac
}

for t in "${targets[@]}"; do
    mkdir -p "corpus/$t"
    echo "== $t: ${secs}s"
    # shellcheck disable=SC2046
    cargo fuzz run -O "$t" "corpus/$t" $(seeds "$t") -- \
        -max_total_time="$secs" -max_len=8192 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
    # Edge coverage only (no hit counters): a corpus small enough to keep in the repo.
    cargo fuzz cmin -O "$t" "corpus/$t" -- -use_counters=0
done
