#!/usr/bin/env bash
# The command line: help for every subcommand, bad configuration exits 2 naming
# the variable, `vestnik config` redacts secrets, a busy port is a clear error.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

bin="$VESTNIK_BIN"
out=$(mktemp /tmp/vn-cli.XXXXXX)

for cmd in all bot notifier migrate config flow template; do
    "$bin" "$cmd" --help >"$out" 2>&1 || vn_fail "vestnik $cmd --help exited $?"
    vn_assert_contains "$(cat "$out")" "Usage: vestnik $cmd" "vestnik $cmd --help"
done
"$bin" --help >"$out" && vn_assert_contains "$(cat "$out")" "Commands:" "vestnik --help"

code=0; "$bin" frobnicate >"$out" 2>&1 || code=$?
vn_assert_eq "$code" 2 "unknown command exits 2"
vn_assert_contains "$(cat "$out")" 'unknown command "frobnicate"' "unknown command is named"

code=0; HTTP_PORT=abc "$bin" all >"$out" 2>&1 || code=$?
vn_assert_eq "$code" 2 "bad HTTP_PORT exits 2"
vn_assert_contains "$(cat "$out")" 'HTTP_PORT: expected an integer from 1 to 65535, got "abc"' \
    "the message names HTTP_PORT and what it expected"

code=0; LOG_LEVEL=loud REDIS_URL=http://x "$bin" config >"$out" 2>&1 || code=$?
vn_assert_eq "$code" 2 "two bad variables exit 2"
vn_assert_contains "$(cat "$out")" "LOG_LEVEL: expected one of debug, info, warn, error" "LOG_LEVEL named"
vn_assert_contains "$(cat "$out")" "REDIS_URL: expected a URL with scheme redis://" "REDIS_URL named"

API_KEY=topsecret REDIS_URL='redis://:hunter2@127.0.0.1:6379/0' "$bin" config >"$out"
vn_assert_contains "$(cat "$out")" "REDIS_URL=redis://:***@127.0.0.1:6379/0" "URL password redacted"
vn_assert_contains "$(cat "$out")" "API_KEY=***" "API key redacted"
if grep -q -e hunter2 -e topsecret "$out"; then vn_fail "a secret was printed"; fi
vn_ok "no secret in vestnik config output"

# A port that is taken: exit 1 and say which port and what to change.
port=$(vn_free_port)
/usr/bin/python3 -c "
import socket,time,sys
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', $port)); s.listen(); time.sleep(5)" &
holder=$!
sleep 0.5
code=0; HTTP_PORT=$port timeout 10 "$bin" all >"$out" 2>&1 || code=$?
kill "$holder" 2>/dev/null || true
vn_assert_eq "$code" 1 "busy port exits 1"
vn_assert_contains "$(cat "$out")" "cannot listen on 127.0.0.1:$port" "busy port is named"
vn_assert_contains "$(cat "$out")" "HTTP_PORT" "message says which variable to change"
# The example bot's flows and the default templates agree, from the CLI.
code=0; "$bin" flow check "$VN_SOURCE_DIR/examples/reminders/flows" \
	--templates "$VN_SOURCE_DIR/templates/default" >"$out" 2>&1 || code=$?
vn_assert_eq "$code" 0 "vestnik flow check passes the example bot: $(tail -3 "$out")"
code=0; "$bin" template check "$VN_SOURCE_DIR/templates/default" >"$out" 2>&1 || code=$?
vn_assert_eq "$code" 0 "vestnik template check passes the default set: $(tail -3 "$out")"
"$bin" flow graph "$VN_SOURCE_DIR/examples/reminders/flows" --flow remind >"$out"
vn_assert_contains "$(cat "$out")" "ask_when" "vestnik flow graph draws the remind flow"
code=0; "$bin" flow check "$VN_SOURCE_DIR/tests/fixtures/flows/broken" >"$out" 2>&1 || code=$?
vn_assert_eq "$code" 1 "flow check exits 1 on broken flows"
rm -f "$out"
vn_done
