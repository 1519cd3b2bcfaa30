# shellcheck shell=bash
# shellcheck disable=SC2034 # VN_* globals are read by the tests sourcing this
# tests/integration/lib.sh — helpers for the shell integration tests.
#
#   . "$(dirname "$0")/lib.sh"
#   vn_load_env                          # services' URLs (scripts/services up)
#   vn_start_vestnik "$log" all          # sets VN_PID, VN_PORT, VN_URL
#   vn_http GET /healthz                 # sets VN_STATUS, VN_BODY
#   vn_assert_eq "$VN_STATUS" 200 "healthz answers 200"
#   vn_done                              # "N passed, 0 failed", exit 0
#
# Every check prints "ok - <what>"; the first failure prints "not ok - <what>",
# the tail of each vestnik log, "N passed, 1 failed", and exits 1. On any
# exit the vestnik processes started here get SIGTERM (then SIGKILL).
#
# A test may still set its own `trap CMD EXIT`: this file wraps the trap
# builtin for EXIT only, so CMD runs first and this file's cleanup after it.
#
# VN_TMP is a scratch directory of this test, removed on exit.
#
# Environment (set by tests/CMakeLists.txt): VN_SOURCE_DIR (repo root),
# VESTNIK_BIN (the binary). Optional: VESTNIK_STATE_DIR (scripts/services).

VN_SOURCE_DIR="${VN_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
VESTNIK_BIN="${VESTNIK_BIN:-$VN_SOURCE_DIR/build/vestnik}"
VN_STATE_DIR="${VESTNIK_STATE_DIR:-$VN_SOURCE_DIR/.services}"
VN_PASSED=0
VN_FAILED=0
VN_SKIPPED=0
VN_PID=""
VN_PORT=""
VN_URL=""
VN_LOG=""
VN_STATUS=""
VN_BODY=""
VN__PIDS=()     # every vestnik started, for the exit cleanup
VN__LOGS=()     # and its log file
VN__DONE=0
VN__USER_EXIT=""
VN_TMP="$(mktemp -d "${TMPDIR:-/tmp}/vn-test.XXXXXX")"

# vn_ok WHAT: record a passed check.
vn_ok() {
	echo "ok - $*"
	VN_PASSED=$((VN_PASSED + 1))
}

# vn_skip WHAT: record a check that could not run here, and why.
vn_skip() {
	echo "ok - # skip $*"
	VN_SKIPPED=$((VN_SKIPPED + 1))
}

# vn_fail WHAT: record a failed check and end the test (exit 1).
vn_fail() {
	echo "not ok - $*"
	VN_FAILED=$((VN_FAILED + 1))
	exit 1
}

# vn_done: every check passed; print the summary and exit 0.
vn_done() {
	VN__DONE=1
	exit 0
}

# vn__shorten TEXT: TEXT cut to 600 characters for messages.
vn__shorten() {
	local s="$1"
	((${#s} <= 600)) || s="${s:0:600}... (${#1} chars)"
	printf '%s' "$s"
}

# vn_assert_eq ACTUAL EXPECTED WHAT
vn_assert_eq() {
	if [[ "$1" == "$2" ]]; then
		vn_ok "$3"
	else
		vn_fail "$3: expected '$(vn__shorten "$2")', got '$(vn__shorten "$1")'"
	fi
}

# vn_assert_contains HAYSTACK NEEDLE WHAT
vn_assert_contains() {
	if [[ "$1" == *"$2"* ]]; then
		vn_ok "$3"
	else
		vn_fail "$3: '$(vn__shorten "$2")' not found in '$(vn__shorten "$1")'"
	fi
}

# vn_load_env: export the services' env file (REDIS_URL, DATABASE_URL, ...).
vn_load_env() {
	local f="$VN_STATE_DIR/env"
	[[ -r "$f" ]] || vn_fail "no services env file $f; run 'scripts/services up' (or make services-up)"
	set -a
	# shellcheck disable=SC1090
	. "$f"
	set +a
	# ctest runs in the build directory: point the relative defaults at the sources
	export MIGRATIONS_DIR="${MIGRATIONS_DIR:-$VN_SOURCE_DIR/db/migrations}"
	export TEMPLATES_DIR="${TEMPLATES_DIR:-$VN_SOURCE_DIR/templates/default}"
	export FLOWS_DIR="${FLOWS_DIR:-$VN_SOURCE_DIR/examples/reminders/flows}"
}

# vn_free_port: print a TCP port nothing listens on, below the kernel's
# ephemeral range (an outgoing connection's local port never takes it while
# the server starts): random in 10000 .. (ephemeral low - 1).
vn_free_port() {
	local port i low=32768 span
	read -r low _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true
	((low > 11000)) || low=32768
	span=$((low - 10000))
	for ((i = 0; i < 200; i++)); do
		port=$((10000 + (RANDOM * 32768 + RANDOM) % span))
		if command -v ss >/dev/null 2>&1; then
			[[ -z "$(ss -Hltn "( sport = :$port )" 2>/dev/null)" ]] || continue
		elif (: <"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			continue
		fi
		echo "$port"
		return 0
	done
	echo "vn_free_port: found no free port" >&2
	vn_fail "vn_free_port: found no free port"
}

# vn_http METHOD PATH [curl args...]: one request to the last vestnik started
# (PATH may also be a full URL). Sets VN_STATUS ("000" when nothing answered)
# and VN_BODY. Never fails by itself; assert on the globals.
vn_http() {
	local method="$1" path="$2" url body="$VN_TMP/body"
	shift 2
	if [[ "$path" == http://* || "$path" == https://* ]]; then
		url="$path"
	else
		[[ -n "$VN_URL" ]] || vn_fail "vn_http $method $path: no vestnik started (vn_start_vestnik)"
		url="$VN_URL$path"
	fi
	local how=(-X "$method")
	[[ "$method" == HEAD ]] && how=(-I)
	: >"$body"
	VN_STATUS="$(curl -s -m 10 "${how[@]}" -o "$body" -w '%{http_code}' "$@" "$url" 2>/dev/null)" ||
		true
	[[ -n "$VN_STATUS" ]] || VN_STATUS=000
	VN_BODY="$(cat "$body")"
}

# vn_wait_for STATUS METHOD PATH TIMEOUT_S: repeat vn_http until it answers
# STATUS; 1 if it did not within TIMEOUT_S (VN_STATUS/VN_BODY: last answer).
vn_wait_for() {
	local want="$1" method="$2" path="$3" deadline=$((SECONDS + $4))
	while :; do
		vn_http "$method" "$path"
		[[ "$VN_STATUS" == "$want" ]] && return 0
		((SECONDS < deadline)) || return 1
		sleep 0.1
	done
}

# vn_start_vestnik LOGFILE ARGS...: start "$VESTNIK_BIN" ARGS in the
# background on a free port, output to LOGFILE, and wait up to 10 s for
# /healthz. Sets VN_PID, VN_PORT (also exported as HTTP_PORT to it), VN_URL,
# VN_LOG. Variables set on the call line reach vestnik:
#   LOG_LEVEL=debug vn_start_vestnik "$log" all
vn_start_vestnik() {
	local log="$1" i code=0
	shift
	[[ -x "$VESTNIK_BIN" ]] || vn_fail "VESTNIK_BIN ($VESTNIK_BIN) is not an executable; build first"
	VN_PORT="$(vn_free_port)"
	VN_URL="http://127.0.0.1:$VN_PORT"
	VN_LOG="$log"
	HTTP_PORT="$VN_PORT" "$VESTNIK_BIN" "$@" >"$log" 2>&1 </dev/null &
	VN_PID=$!
	VN__PIDS+=("$VN_PID")
	VN__LOGS+=("$log")
	for ((i = 0; i < 100; i++)); do
		if ! kill -0 "$VN_PID" 2>/dev/null; then
			wait "$VN_PID" || code=$?
			vn__forget "$VN_PID"
			vn_fail "vestnik $* exited (status $code) before /healthz answered"
		fi
		vn_http GET /healthz
		[[ "$VN_STATUS" == 200 ]] && return 0
		sleep 0.1
	done
	vn_fail "vestnik $* did not answer 200 on $VN_URL/healthz within 10 s (last: $VN_STATUS)"
}

# vn_stop_vestnik [PID]: SIGTERM (the last started by default), wait for it
# (SIGKILL after 30 s) and return its exit status.
vn_stop_vestnik() {
	local pid="${1:-$VN_PID}" code=0 dog
	[[ -n "$pid" ]] || vn_fail "vn_stop_vestnik: no vestnik started"
	kill -TERM "$pid" 2>/dev/null || true
	(
		sleep 30
		kill -KILL "$pid" 2>/dev/null
	) >/dev/null 2>&1 &
	dog=$!
	wait "$pid" || code=$?
	kill "$dog" 2>/dev/null || true
	wait "$dog" 2>/dev/null || true
	vn__forget "$pid"
	return "$code"
}

# vn__forget PID: PID has been reaped; never signal that number again.
vn__forget() {
	local i
	for i in "${!VN__PIDS[@]}"; do
		[[ "${VN__PIDS[$i]}" != "$1" ]] || VN__PIDS[i]=""
	done
}

# vn__on_exit: runs once, whatever ends the test.
vn__on_exit() {
	local rc=$? i pid
	builtin trap - EXIT
	if [[ -n "$VN__USER_EXIT" ]]; then
		eval "$VN__USER_EXIT" || true
	fi
	if ((rc == 0 && !VN__DONE)); then
		echo "not ok - test ended without vn_done"
		VN_FAILED=$((VN_FAILED + 1))
		rc=1
	elif ((rc != 0 && VN_FAILED == 0)); then
		echo "not ok - test script failed (exit $rc)${VN__LAST_ERR:+ at $VN__LAST_ERR}"
		VN_FAILED=1
	fi
	for i in "${!VN__PIDS[@]}"; do
		pid="${VN__PIDS[$i]}"
		if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
			kill -TERM "$pid" 2>/dev/null || true
			for _ in {1..50}; do
				kill -0 "$pid" 2>/dev/null || break
				sleep 0.1
			done
			kill -KILL "$pid" 2>/dev/null || true
		fi
		if ((rc != 0)) && [[ -s "${VN__LOGS[$i]}" ]]; then
			echo "# last lines of ${VN__LOGS[$i]}:"
			tail -n 40 "${VN__LOGS[$i]}" | sed 's/^/#   /'
		fi
	done
	rm -rf "$VN_TMP"
	if ((VN_SKIPPED > 0)); then
		echo "$VN_PASSED passed, $VN_FAILED failed, $VN_SKIPPED skipped"
	else
		echo "$VN_PASSED passed, $VN_FAILED failed"
	fi
	exit "$rc"
}

# trap: the builtin, except that an EXIT handler set by the test is kept
# aside and run by vn__on_exit, before its cleanup and summary.
trap() {
	local handler sig rest=()
	if [[ "${1:-}" == -- ]]; then
		shift
	fi
	if (($# < 2)) || [[ "$1" == -[lp] ]]; then
		# shellcheck disable=SC2064 # the caller chose the quoting
		builtin trap "$@"
		return
	fi
	handler="$1"
	shift
	for sig in "$@"; do
		case "$sig" in
		EXIT | SIGEXIT | 0)
			if [[ "$handler" == - ]]; then
				VN__USER_EXIT=""
			else
				VN__USER_EXIT="$handler"
			fi
			;;
		*) rest+=("$sig") ;;
		esac
	done
	((${#rest[@]} == 0)) || builtin trap -- "$handler" "${rest[@]}"
}

VN__LAST_ERR=""
builtin trap 'VN__LAST_ERR="line $LINENO: $BASH_COMMAND"' ERR
builtin trap vn__on_exit EXIT
