#!/usr/bin/env bash
# The project's test command (CI runs it through .ci/run).
#
# 1. Installs what is missing, skipping what is present: Debian packages
#    (chromium, ffmpeg, redis-server, iproute2, nftables, systemd, Node.js) and test/node's
#    npm modules (npm ci, when node_modules is missing or stale).
# 2. gofmt check, go vet ./...
# 3. go test -race ./... and a short run of every FuzzXxx target, inside a
#    fresh network namespace whose only interface is loopback (and a PID
#    namespace, so no test process can outlive this script), when running
#    as root with unshare; otherwise as is, with a warning. The tests that
#    measure real-time media (QUIET_TESTS: shaped links, freezes, a meeting
#    forming) run afterwards in a phase of their own, one package at a time,
#    with RTCIO_QUIET_MACHINE=1: on a 2-core machine the other packages'
#    tests would otherwise starve their Chromium and Go peers, and the
#    starvation, not the gateway, would be what they measure.
# 4. A closing summary line; the exit status is non-zero on any failure.
#
# Knobs (environment): GO_TEST_TIMEOUT (default 20m), FUZZ_TIME (10s),
# FUZZ_TARGET_TIMEOUT (seconds per fuzz target, 240), SKIP_FUZZ=1,
# GO_TEST_PKGS (default ./...; with anything else the quiet phase is left
# out and its tests run with the rest).
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 1

GO_TEST_TIMEOUT="${GO_TEST_TIMEOUT:-20m}"
FUZZ_TIME="${FUZZ_TIME:-10s}"
FUZZ_TARGET_TIMEOUT="${FUZZ_TARGET_TIMEOUT:-240}"
GO_TEST_PKGS="${GO_TEST_PKGS:-./...}"
# Timing-sensitive tests, by package, run alone after the rest (see 3.).
QUIET_TESTS=(
	"./gateway/sfu TestWeakSubscriberPausedThenResumed|TestWeakSubscriberAtTheEdge|TestActiveSpeakerFollowsTurns|TestBrowserSFUFourParticipants"
	"./internal/loadtest TestMeetingOf30Forms|TestCascadeSixtySubscribers"
	"./gateway/clusterrooms TestSFUMediaAcrossNodes|TestSFUMediaRedisDown|TestSFUSignalingNodeKilled|TestCascadeEdgeKilled|TestCascadeLateJoinerOnEdge"
)
APT_PACKAGES=(chromium ffmpeg redis-server iproute2 nftables systemd)

WORK="$(mktemp -d "${TMPDIR:-/tmp}/rtcio-test.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

failed_checks=()
step() { printf '\n==> %s\n' "$*"; }
warn() { printf 'WARNING: %s\n' "$*"; }
fail() {
	printf 'FAILED: %s\n' "$1"
	failed_checks+=("$1")
}

# --- 1. prerequisites --------------------------------------------------------

pkg_installed() {
	dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

install_system_packages() {
	local missing=() p
	if command -v dpkg-query >/dev/null; then
		for p in "${APT_PACKAGES[@]}"; do
			pkg_installed "$p" || missing+=("$p")
		done
	fi
	command -v node >/dev/null || missing+=(nodejs)
	command -v npm >/dev/null || missing+=(npm)
	command -v unshare >/dev/null || missing+=(util-linux)
	if [ "${#missing[@]}" -eq 0 ]; then
		echo "system packages present: ${APT_PACKAGES[*]} node npm unshare"
		return 0
	fi
	if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
		warn "missing ${missing[*]}, and apt-get install needs root on Debian; tests needing them will skip (or fail under CI)"
		return 0
	fi
	echo "installing: ${missing[*]}"
	# Package scripts must not start services (redis-server would) that
	# outlive this script: policy-rc.d exit 101 forbids it for the install.
	local policy=/usr/sbin/policy-rc.d made_policy=
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && made_policy=1
	fi
	local rc=0
	# A lock held by another apt run is waited for, not failed on.
	apt-get -o DPkg::Lock::Timeout=900 -qq update &&
		DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 -y -qq install "${missing[@]}" ||
		rc=$?
	[ -n "$made_policy" ] && rm -f "$policy"
	return "$rc"
}

install_node_modules() {
	local dir="$ROOT/test/node" stamp="$ROOT/test/node/node_modules/.rtcio-installed" want
	want="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1) $(node --version)"
	if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
		echo "test/node/node_modules up to date"
		return 0
	fi
	echo "npm ci in test/node"
	(cd "$dir" && npm ci --no-audit --no-fund --loglevel=error) && echo "$want" >"$stamp"
}

step "prerequisites"
if ! command -v go >/dev/null && [ -x /usr/local/go/bin/go ]; then
	export PATH="/usr/local/go/bin:$PATH"
fi
if ! command -v go >/dev/null; then
	fail "go toolchain not found"
	echo "summary: 0 passed, 1 failed"
	exit 1
fi
go version
install_system_packages || fail "apt-get install"
if command -v node >/dev/null && command -v npm >/dev/null; then
	install_node_modules || fail "npm ci in test/node"
else
	fail "node/npm not available"
fi
# The tests run without network below, so every module must be local first.
go mod download || fail "go mod download"

# Isolation: a new network namespace (only lo, brought up) and PID
# namespace (its processes die with it). Checked here rather than assumed:
# containers often forbid unshare.
ISOLATE=0
if [ "$(id -u)" -eq 0 ] && command -v unshare >/dev/null && command -v ip >/dev/null; then
	if unshare --net --pid --fork --kill-child --mount-proc -- \
		sh -c 'ip link set lo up && ip -o -4 addr show dev lo | grep -q 127.0.0.1 && [ "$(ip -o link show | wc -l)" -eq 1 ]' 2>/dev/null; then
		ISOLATE=1
		echo "tests run in a loopback-only network namespace"
	else
		warn "unshare into a new network namespace failed; tests run on the host network"
	fi
else
	warn "not root or unshare/ip missing; tests run on the host network"
fi

isolated() {
	if [ "$ISOLATE" = 1 ]; then
		unshare --net --pid --fork --kill-child --mount-proc -- \
			sh -c 'ip link set lo up && exec "$@"' isolated "$@"
	else
		"$@"
	fi
}

# --- 2. static checks ------------------------------------------------------

step "gofmt"
unformatted="$(find . \( -path ./.git -o -path '*/node_modules' -o -path '*/testdata' -o -path ./tmp \) -prune \
	-o -name '*.go' -type f -print0 | xargs -0 -r gofmt -l)"
if [ -n "$unformatted" ]; then
	echo "not gofmt-formatted:"
	printf '  %s\n' $unformatted
	fail "gofmt"
else
	echo "all Go files formatted"
fi

step "go vet ./..."
go vet ./... && echo "vet clean" || fail "go vet"

# --- 3. tests ----------------------------------------------------------------

tests_passed=0 tests_failed=0 tests_skipped=0
# add_counts FILE: adds a testreport "passed failed skipped" file to the totals.
add_counts() {
	local p f k
	[ -s "$1" ] || return 0
	read -r p f k <"$1"
	tests_passed=$((tests_passed + p)) tests_failed=$((tests_failed + f)) tests_skipped=$((tests_skipped + k))
}
quiet_skip=() quiet_all=
if [ "$GO_TEST_PKGS" = ./... ]; then
	for q in "${QUIET_TESTS[@]}"; do
		quiet_all="${quiet_all:+$quiet_all|}${q#* }"
	done
	quiet_skip=(-skip "^(${quiet_all})\$")
fi
step "go test -race -count=1 -timeout $GO_TEST_TIMEOUT $GO_TEST_PKGS ${quiet_skip[*]}"
if go build -o "$WORK/testreport" ./scripts/testreport; then
	# shellcheck disable=SC2086 # GO_TEST_PKGS may list several patterns.
	GOPROXY=off GOTOOLCHAIN=local isolated go test -race -count=1 -timeout "$GO_TEST_TIMEOUT" -json "${quiet_skip[@]}" $GO_TEST_PKGS 2>&1 |
		"$WORK/testreport" -counts "$WORK/counts"
	rc=$?
	add_counts "$WORK/counts"
	[ "$rc" -eq 0 ] || fail "go test"
	if [ -n "$quiet_all" ]; then
		step "go test, timing-sensitive tests alone (RTCIO_QUIET_MACHINE=1)"
		for q in "${QUIET_TESTS[@]}"; do
			rm -f "$WORK/counts"
			RTCIO_QUIET_MACHINE=1 GOPROXY=off GOTOOLCHAIN=local isolated go test -race -count=1 -timeout "$GO_TEST_TIMEOUT" -json \
				-run "^(${q#* })\$" "${q%% *}" 2>&1 | "$WORK/testreport" -counts "$WORK/counts"
			rc=$?
			add_counts "$WORK/counts"
			[ "$rc" -eq 0 ] || fail "go test (quiet) ${q%% *}"
		done
	fi
else
	fail "building scripts/testreport"
fi

fuzz_passed=0 fuzz_failed=0
if [ "${SKIP_FUZZ:-}" = 1 ]; then
	step "fuzz: skipped (SKIP_FUZZ=1)"
else
	# Every `func FuzzXxx(` in a _test.go file, as "dir name" lines.
	mapfile -t targets < <(
		find . \( -path ./.git -o -path '*/node_modules' -o -path '*/testdata' -o -path ./tmp \) -prune \
			-o -name '*_test.go' -type f -print | sort |
			while read -r f; do
				sed -nE 's/^func (Fuzz[A-Za-z0-9_]*)\(.*/\1/p' "$f" | while read -r name; do
					echo "$(dirname "$f") $name"
				done
			done
	)
	step "fuzz: ${#targets[@]} targets, $FUZZ_TIME each"
	for t in "${targets[@]}"; do
		read -r dir name <<<"$t"
		echo "--- $name ($dir)"
		run_fuzz() {
			GOPROXY=off GOTOOLCHAIN=local isolated timeout --kill-after=30 "$FUZZ_TARGET_TIMEOUT" \
				go test -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZ_TIME" "$dir" 2>&1 | tee "$fuzz_log"
			return "${PIPESTATUS[0]}"
		}
		fuzz_log=$(mktemp)
		ok=0
		if run_fuzz; then
			ok=1
		elif grep -q '^    context deadline exceeded$' "$fuzz_log" && ! grep -q 'Failing input written' "$fuzz_log"; then
			# go test -fuzz sometimes reports its own worker deadline at the
			# end of -fuzztime as a failure, with no failing input; retry once.
			echo "fuzz engine deadline without a failing input; running $name again"
			run_fuzz && ok=1
		fi
		rm -f "$fuzz_log"
		if [ "$ok" = 1 ]; then
			fuzz_passed=$((fuzz_passed + 1))
		else
			fuzz_failed=$((fuzz_failed + 1))
			fail "fuzz $name in $dir"
		fi
	done
fi

# --- 4. summary ----------------------------------------------------------------

step "summary"
echo "go test: $tests_passed passed, $tests_failed failed, $tests_skipped skipped; fuzz targets: $fuzz_passed passed, $fuzz_failed failed"
[ "$ISOLATE" = 1 ] || echo "note: tests were not network-isolated"
other_failures=$((${#failed_checks[@]} - fuzz_failed))
if [ "$tests_failed" -gt 0 ]; then
	# The failed "go test" runs are among the failed checks; their tests
	# are counted already.
	for c in "${failed_checks[@]}"; do
		case "$c" in "go test"*) other_failures=$((other_failures - 1)) ;; esac
	done
fi
if [ "${#failed_checks[@]}" -gt 0 ]; then
	printf 'failed checks: %s\n' "$(IFS=,; echo "${failed_checks[*]}")"
fi
echo "summary: $((tests_passed + fuzz_passed)) passed, $((tests_failed + fuzz_failed + other_failures)) failed, $tests_skipped skipped"
[ "${#failed_checks[@]}" -eq 0 ]
