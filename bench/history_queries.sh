#!/usr/bin/env bash
# Times the history queries on a large store: 10,000 tests × 100 runs =
# 1,000,000 results (tests/queries_scale.rs writes it), release build,
# whole commands. Target: `flaky` and `regressed` within 1 s each on SQLite.
#
#   bench/history_queries.sh [HISTORY]    # default: a new SQLite file in a temp dir
#
# HISTORY may be an existing store (`sqlite:PATH` or `postgres://…`) written
# by an earlier run; then nothing is seeded.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-target}
reps=${REPS:-5}

cargo build --release --locked --quiet
if [ $# -eq 0 ]; then
    dir=$(mktemp -d)
    trap 'rm -rf "$dir"' EXIT
    history="sqlite:$dir/history.db"
    WARDEN_SCALE_HISTORY=$history cargo test --release --locked --quiet \
        --test queries_scale -- --ignored --nocapture 2>&1 | grep -E '^seeded' || true
else
    history=$1
fi

warden="$target/release/warden"
TIMEFORMAT=%R
for cmd in "flaky" "flaky --by arch,compiler" "flaky --format json --limit 0" \
    "regressed" "history test_04242" "durations --batches" "durations"; do
    times=()
    for _ in $(seq "$reps"); do
        # shellcheck disable=SC2086 # $cmd is words on purpose
        t=$( { time "$warden" $cmd --since 365d --history "$history" >/dev/null; } 2>&1 )
        times+=("$t")
    done
    sorted=$(printf '%s\n' "${times[@]}" | sort -n | tr '\n' ' ')
    median=$(printf '%s\n' "${times[@]}" | sort -n | sed -n "$(( (reps + 1) / 2 ))p")
    printf '%-40s median %ss  (all: %s)\n' "warden $cmd" "$median" "$sorted"
done
