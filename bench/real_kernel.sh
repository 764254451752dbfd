#!/usr/bin/env bash
# Reproduce the real kernel test-runner fixtures under tests/fixtures/real/
# (kselftest, kunit, ltp) from scratch on a Debian 12 (bookworm) machine.
#
# usage: sudo bench/real_kernel.sh OUTDIR [SCRATCH]
#   OUTDIR   gets kselftest/ kunit/ ltp/ subdirectories with the recordings,
#            <fixture>.rc (exit status of the recorded command),
#            <fixture>.expected.tsv (derived by bench/real_kernel_expected.py)
#            and versions.txt.  Compare with / copy into tests/fixtures/real/.
#   SCRATCH  build directory (default /tmp/warden-real-kernel); the kernel
#            source is extracted there (~1.5 GB).
#
# Environment:
#   SKIP_APT=1   do not run apt-get (packages already installed)
#   LTP_DIR=DIR  an LTP source tree in which the LTP library and the test
#                binaries listed in LTP_TESTS below are already built (this
#                script deliberately does not build LTP).  Without it the LTP
#                step is skipped.
#
# Must run as root (kselftests such as exec/ and the LTP tests expect it).
# Takes ~3 minutes on 2 cores, most of it extraction and the timers run.
set -euo pipefail

[ $# -ge 1 ] || { sed -n '2,22p' "$0"; exit 2; }
OUT=$(realpath -m "$1")
SCRATCH=$(realpath -m "${2:-/tmp/warden-real-kernel}")
REPO=$(cd "$(dirname "$0")/.." && pwd)
HELPER="python3 $REPO/bench/real_kernel_expected.py"
SRC=$REPO/tests/fixtures/real/kselftest/src
KSRC=$SCRATCH/linux-source-6.12
SELFTESTS=$KSRC/tools/testing/selftests
KSFT=$SCRATCH/ksft
KSFT_CUSTOM=$SCRATCH/ksft-custom
BIN=$SCRATCH/custom-bin

mkdir -p "$OUT/kselftest" "$OUT/kunit" "$OUT/ltp" "$SCRATCH"

# ---------------------------------------------------------------- packages
if [ "${SKIP_APT:-0}" != 1 ]; then
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y \
		linux-source-6.12 build-essential rsync bc flex bison \
		libcap-dev libelf-dev python3 perl coreutils
fi

# record: run a command in DIR with stdout+stderr through a pipe into FILE,
# and its exit status into FILE-without-extension.rc.  A pipe is used on
# purpose: run_kselftest.sh appends test output via `4>>/dev/stdout`, which
# clobbers earlier lines when stdout is a regular file opened with `>`.
record() {
	local dir=$1 file=$2; shift 2
	local rc
	set +e
	(cd "$dir" && "$@" 2>&1) | cat > "$file"
	rc=${PIPESTATUS[0]}
	set -e
	echo "$rc" > "${file%.*}.rc"
	echo "recorded $file (exit $rc)"
}

# ---------------------------------------------------------------- kernel tree
rm -rf "$KSRC" "$KSFT" "$KSFT_CUSTOM" "$BIN"
tar -C "$SCRATCH" -xf /usr/src/linux-source-6.12.tar.xz
make -C "$KSRC" headers -j"$(nproc)"
make -C "$SELFTESTS" -j"$(nproc)" \
	TARGETS="size kcmp mincore timers breakpoints exec" \
	install INSTALL_PATH="$KSFT"
# pristine copy for the custom collections (exec/ tests leave very deep
# directories behind once they have run)
cp -a "$KSFT" "$KSFT_CUSTOM"

# ---------------------------------------------------------------- kselftest
K=$OUT/kselftest
# several collections in one run (breakpoints only breakpoint_test:
# step_after_suspend_test would try to suspend the machine)
record "$KSFT" "$K/run_kselftest_multi.tap" \
	./run_kselftest.sh -c size -c kcmp -c mincore -c exec \
	-t breakpoints:breakpoint_test
# one test
record "$KSFT" "$K/run_kselftest_single.tap" \
	./run_kselftest.sh -t mincore:mincore_selftest
# runner timeout: timers/settings says timeout=0, override it
record "$KSFT" "$K/run_kselftest_timers_timeout2.tap" \
	./run_kselftest.sh -c timers --override-timeout 2
record "$KSFT" "$K/run_kselftest_timers_timeout6.tap" \
	./run_kselftest.sh -c timers --override-timeout 6
# the same runner with stdout redirected to a regular file (not a pipe):
# shows the interleaving/clobbering that happens then
set +e
(cd "$KSFT" && ./run_kselftest.sh -c size -c kcmp -c mincore \
	> "$K/run_kselftest_redirect_to_file.out" 2>&1)
echo $? > "$K/run_kselftest_redirect_to_file.rc"
set -e

# misbehaving custom tests, compiled against the tree's kselftest headers
mkdir -p "$BIN"
for t in harness_misbehave harness_killed ksft_crash ksft_hang; do
	# relative source name, so that TH_LOG's __FILE__ is just "$t.c"
	(cd "$SRC" && gcc -Wall -O0 -I "$SELFTESTS" -o "$BIN/$t" "$t.c")
done
record "$BIN" "$K/harness_misbehave.tap" ./harness_misbehave
record "$BIN" "$K/ksft_crash.tap" ./ksft_crash
record "$BIN" "$K/harness_killed.tap" timeout -s KILL 2 ./harness_killed

# the same binaries as two extra collections of a copy of the install dir
# (copied right after installation, see above)
mkdir -p "$KSFT_CUSTOM/warden_crash" "$KSFT_CUSTOM/warden_hang"
cp "$BIN/ksft_crash" "$BIN/harness_misbehave" "$KSFT_CUSTOM/warden_crash/"
cp "$BIN/ksft_hang" "$KSFT_CUSTOM/warden_hang/"
echo timeout=10 > "$KSFT_CUSTOM/warden_crash/settings"
echo timeout=3 > "$KSFT_CUSTOM/warden_hang/settings"
printf '%s\n' warden_crash:ksft_crash warden_crash:harness_misbehave \
	warden_hang:ksft_hang >> "$KSFT_CUSTOM/kselftest-list.txt"
record "$KSFT_CUSTOM" "$K/run_kselftest_custom.tap" \
	./run_kselftest.sh -c warden_crash -c warden_hang

for f in "$K"/run_kselftest_*.tap; do
	$HELPER kselftest-runner "$f" > "${f%.tap}.expected.tsv"
	$HELPER totals "$f" > "${f%.tap}.totals.tsv"
done
for t in harness_misbehave ksft_crash harness_killed; do
	$HELPER tap "$t" "$K/$t.tap" > "$K/$t.expected.tsv"
	$HELPER totals "$K/$t.tap" > "$K/$t.totals.tsv"
done

# ---------------------------------------------------------------- kunit
U=$OUT/kunit
KUNIT_LOGS="
test_is_test_passed-all_passed
test_is_test_passed-all_passed_nested
test_is_test_passed-failure
test_is_test_passed-kselftest
test_is_test_passed-missing_plan
test_is_test_passed-no_tests_run_with_header
test_is_test_passed-no_tests_run_no_header
test_config_printk_time
test_kernel_panic_interrupt
test_interrupted_tap_output
test_skip_tests
test_skip_all_tests
test_multiple_prefixes
test_output_isolated_correctly
test_pound_sign
test_parse_ktap_output
test_parse_subtest_header
test_parse_attributes
test_insufficient_memory
"
for n in $KUNIT_LOGS; do
	cp "$KSRC/tools/testing/kunit/test_data/$n.log" "$U/$n.log"
	# kunit.py chdirs into the kernel tree: use absolute paths
	record "$KSRC/tools/testing/kunit" "$U/$n.parse.out" \
		sh -c "python3 ./kunit.py parse --json='$U/$n.expected.json' < '$U/$n.log'"
	$HELPER kunit-json "$U/$n.expected.json" > "$U/$n.expected.tsv"
done

# ---------------------------------------------------------------- ltp
L=$OUT/ltp
LTP_TESTS="
testcases/kernel/syscalls/getpid/getpid01
testcases/kernel/syscalls/getppid/getppid01
testcases/kernel/syscalls/getppid/getppid02
testcases/kernel/syscalls/kcmp/kcmp01
testcases/kernel/syscalls/mprotect/mprotect01
testcases/kernel/syscalls/semop/semop05
testcases/kernel/syscalls/fmtmsg/fmtmsg01
testcases/kernel/syscalls/ioperm/ioperm02
testcases/kernel/syscalls/iopl/iopl01
testcases/kernel/syscalls/cacheflush/cacheflush01
lib/newlib_tests/test04
lib/newlib_tests/test_brk_fail
lib/newlib_tests/test14
lib/newlib_tests/tst_res_flags
lib/newlib_tests/test_runtime02
"
if [ -n "${LTP_DIR:-}" ]; then
	mkdir -p "$SCRATCH/ltp-tmp"
	cat "$LTP_DIR/VERSION" > "$L/ltp-version.txt" 2>/dev/null || true
	for t in $LTP_TESTS; do
		n=$(basename "$t")
		record "$LTP_DIR/$(dirname "$t")" "$L/$n.out" \
			env TMPDIR="$SCRATCH/ltp-tmp" timeout 120 "./$n"
		$HELPER ltp "$n" "$L/$n.out" > "$L/$n.expected.tsv"
	done
else
	echo "LTP_DIR not set: LTP step skipped" | tee "$L/SKIPPED.txt"
fi

# ---------------------------------------------------------------- versions
for d in kselftest kunit ltp; do
	{
		echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
		echo "linux-source-6.12 package: $(dpkg-query -W -f='${Version}' linux-source-6.12 2>/dev/null || echo '?')"
		echo "kernel source: $(make -s -C "$KSRC" kernelversion 2>/dev/null)"
		echo "running kernel: $(uname -r) $(uname -m)"
		echo "gcc: $(gcc --version | head -n1)"
		echo "bash: $(bash --version | head -n1)"
		echo "python3: $(python3 --version 2>&1)"
		echo "perl: $(perl -e 'print $^V')"
		echo "coreutils timeout: $(timeout --version | head -n1)"
		echo "debian: $(cat /etc/debian_version)"
		if [ "$d" = ltp ] && [ -n "${LTP_DIR:-}" ]; then
			echo "ltp: $(cat "$LTP_DIR/VERSION" 2>/dev/null)"
		fi
	} > "$OUT/$d/versions.txt"
done
echo "done: $OUT"
