#!/bin/sh
# Fills fuzz/corpus/<target>/ with seeds from the real-output fixtures
# (tests/fixtures/real, tests/fixtures/junit). The parser targets read a
# 9-byte header (ending, arrival-time seed) before the output: each
# recording gets a zero header (exited, every line at once) and a second
# copy with a non-zero one. Run from anywhere; safe to run again.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
real="$here/../tests/fixtures/real"
junit="$here/../tests/fixtures/junit"
corpus="$here/corpus"

# seed TARGET FILE...: header + recording, twice.
seed() {
    target=$1; shift
    mkdir -p "$corpus/$target"
    for f in "$@"; do
        [ -s "$f" ] || continue
        base=$(basename "$f")
        { printf '\000\000\000\000\000\000\000\000\000'; cat "$f"; } > "$corpus/$target/$base"
        { printf '\002\001\002\003\004\005\006\007\010'; cat "$f"; } > "$corpus/$target/$base.timed"
    done
}

# plain TARGET FILE...: as is.
plain() {
    target=$1; shift
    mkdir -p "$corpus/$target"
    for f in "$@"; do
        [ -s "$f" ] && cp "$f" "$corpus/$target/$(basename "$f")"
    done
    return 0
}

seed tap "$real"/bats/*.tap "$real"/kselftest/*.tap "$real"/kselftest/*.out
seed kunit "$real"/kunit/*.log "$real"/kselftest/run_kselftest_single.tap
seed ltp "$real"/ltp/*.out
seed test_progs "$here"/seeds/test_progs/*
seed gotest "$real"/go/*.json "$real"/go/*.txt
seed libtest "$real"/libtest/*.txt "$real"/libtest/*.log "$real"/libtest/*.jsonl
plain junit "$junit"/*.xml "$real"/*/*.xml
plain import "$junit"/*.xml "$real"/*/*.xml
plain config "$here"/seeds/config/* "$here"/../examples/*.toml
plain duration "$here"/seeds/duration/*
echo "seeded $(find "$corpus" -type f | wc -l) files under $corpus"
