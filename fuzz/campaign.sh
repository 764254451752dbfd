#!/bin/bash
# Runs every fuzz target for SECONDS (default 600) each, JOBS (default 2)
# at a time, logging to fuzz/logs/<target>.log (not committed); prints
# each target's final figures. Targets named on the command line run
# instead of all of them. Needs cargo-fuzz (`cargo install cargo-fuzz`);
# RUSTC_BOOTSTRAP=1 lets it use the stable toolchain's nightly flags.
#
#   fuzz/campaign.sh                 # all, 10 minutes each
#   SECONDS_EACH=60 fuzz/campaign.sh tap junit
set -u
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
secs=${SECONDS_EACH:-600}
jobs=${JOBS:-2}
targets=${*:-"tap kunit ltp test_progs gotest libtest junit import config duration"}
export RUSTC_BOOTSTRAP=1
# Overflow checks and debug assertions on; no sanitizer (the library is
# safe Rust: ASan would only slow the search down).
flags="-s none -a"
mkdir -p logs corpus artifacts
[ -d corpus/tap ] || ./seed.sh
# NO_BUILD=1: run what is built (the library is being edited).
[ -n "${NO_BUILD:-}" ] || cargo fuzz build $flags || exit 1
bin=target/$(rustc -vV | sed -n 's/^host: //p')/release

run() {
    t=$1
    mkdir -p "corpus/$t"
    # The built binary itself, not `cargo fuzz run`: editing the library
    # while the campaign runs must not rebuild under it.
    "$bin/$t" "corpus/$t" -artifact_prefix="artifacts/$t-" \
        -max_total_time="$secs" -max_len=262144 -rss_limit_mb=2048 \
        -timeout=10 -print_final_stats=1 > "logs/$t.log" 2>&1
    echo "$t: exit $? $(grep -E '^#[0-9]+.*(DONE|cov:)' "logs/$t.log" | tail -1)"
}

running=0
for t in $targets; do
    run "$t" &
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then
        wait -n 2>/dev/null || wait
        running=$((running - 1))
    fi
done
wait
