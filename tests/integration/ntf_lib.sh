# shellcheck shell=bash
# tests/integration/ntf_lib.sh — helpers for the notifier's integration tests.
# Source after lib.sh and bot_lib.sh.
#
# Each test gets its own exchange and queue prefix (so tests never see each
# other's events, nor the dev notifier's), its own fake Bot API and API key.
# maildev is shared: tests address mail to unique recipients.

VN_API_KEY="test-api-key"
VN_RUN_ID="$(head -c 4 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export AMQP_EXCHANGE="vn.test.$VN_RUN_ID"
export NOTIFY_QUEUE_PREFIX="vn.test.$VN_RUN_ID.notifier"

# vn_ntf_env: the environment every notifier of the test runs with.
vn_ntf_env() {
	export API_KEY="$VN_API_KEY" TELEGRAM_API_URL="$VN_FAKE_URL" TELEGRAM_BOT_TOKEN="$VN_TOKEN"
	export TELEGRAM_RATE_LIMIT=off LOG_LEVEL="${LOG_LEVEL:-info}"
	export SMTP_HOST="${SMTP_HOST:-127.0.0.1}" SMTP_PORT="${SMTP_PORT:-1025}"
	export NOTIFY_RETRY_LADDER="${NOTIFY_RETRY_LADDER:-1s,2s}" NOTIFY_CLAIM_LEASE="${NOTIFY_CLAIM_LEASE:-3s}"
	export NOTIFY_POLL_INTERVAL="${NOTIFY_POLL_INTERVAL:-100ms}"
}

# vn_ntf_db: a database of the test's own (migrated), so the schedulers of
# notifiers elsewhere (make run, another test) never take its rows and it never
# takes theirs. Sets DATABASE_URL; vn_ntf_cleanup drops it.
VN_NTF_DB=""
vn_ntf_db() {
	local base="$DATABASE_URL" name="vn_test_$VN_RUN_ID"
	psql -X -qAt "$base" -c "CREATE DATABASE $name" >/dev/null 2>"$VN_TMP/createdb.err" ||
		vn_fail "cannot create a test database: $(cat "$VN_TMP/createdb.err")"
	VN_NTF_DB="$name"
	VN_NTF_BASE_URL="$base"
	DATABASE_URL="$(/usr/bin/python3 -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/" + sys.argv[2])))' "$base" "$name")"
	export DATABASE_URL
	"$VESTNIK_BIN" migrate >"$VN_TMP/migrate.log" 2>&1 || vn_fail "vestnik migrate failed: $(cat "$VN_TMP/migrate.log")"
}

# vn_ntf_cleanup: delete the test's queues, exchange and database.
vn_ntf_cleanup() {
	local q
	if [[ -n "$VN_NTF_DB" ]]; then
		psql -X -qAt "$VN_NTF_BASE_URL" -c "DROP DATABASE IF EXISTS $VN_NTF_DB WITH (FORCE)" >/dev/null 2>&1 || true
	fi
	for q in $(curl -s "$RABBITMQ_MGMT_URL/api/queues/%2F" |
		/usr/bin/python3 -c 'import json,sys; [print(q["name"]) for q in json.load(sys.stdin)]' 2>/dev/null |
		grep -F "$NOTIFY_QUEUE_PREFIX"); do
		curl -s -o /dev/null -X DELETE "$RABBITMQ_MGMT_URL/api/queues/%2F/$q"
	done
	curl -s -o /dev/null -X DELETE "$RABBITMQ_MGMT_URL/api/exchanges/%2F/$AMQP_EXCHANGE"
}

# vn_api METHOD PATH [JSON]: an authorized /v1 call; sets VN_STATUS, VN_BODY.
vn_api() {
	local args=(-H "Authorization: Bearer $VN_API_KEY")
	[[ $# -ge 3 ]] && args+=(-H 'Content-Type: application/json' --data-binary "$3")
	vn_http "$1" "$2" "${args[@]}"
}

# vn_json EXPR [JSON]: evaluate a Python expression on the JSON (default VN_BODY), bound to j.
vn_json() {
	/usr/bin/python3 -c '
import json, sys
j = json.loads(sys.stdin.read())
v = eval(sys.argv[1])
print(json.dumps(v, ensure_ascii=False) if isinstance(v, (dict, list)) else v)' "$1" <<<"${2:-$VN_BODY}"
}

# vn_send ARGS...: `vestnik send` with the test's exchange; prints the event id.
vn_send() {
	"$VESTNIK_BIN" send "$@" 2>>"$VN_TMP/send.log"
}

# vn_publish_raw ROUTING_KEY BODY: publish bytes as they are (no checks) to the
# test's exchange through the management API, e.g. a poison message. BODY "-"
# reads it from stdin (large bodies).
vn_publish_raw() {
	local req="$VN_TMP/publish.json"
	if [[ "$2" == - ]]; then cat; else printf '%s' "$2"; fi | /usr/bin/python3 -c '
import json, sys
print(json.dumps({"properties": {"delivery_mode": 2, "content_type": "application/json"},
    "routing_key": sys.argv[1], "payload": sys.stdin.read(), "payload_encoding": "string"}))' "$1" >"$req"
	curl -s -X POST -H 'content-type: application/json' \
		"$RABBITMQ_MGMT_URL/api/exchanges/%2F/$AMQP_EXCHANGE/publish" --data-binary "@$req"
}

# vn_dead_get N: take up to N messages from the dead-letter queue (JSON list).
vn_dead_get() {
	curl -s -X POST -H 'content-type: application/json' \
		"$RABBITMQ_MGMT_URL/api/queues/%2F/$NOTIFY_QUEUE_PREFIX.dead/get" \
		-d "{\"count\":$1,\"ackmode\":\"ack_requeue_false\",\"encoding\":\"auto\"}"
}

# vn_rows ID: "channel:state" of the event's delivery rows, sorted, comma separated.
vn_rows() {
	vn_api GET "/v1/notifications/$1"
	[[ "$VN_STATUS" == 200 ]] || {
		echo "none"
		return 0
	}
	vn_json '",".join(sorted(d["user_id"] + ":" + d["channel"] + ":" + d["state"] for d in j["deliveries"]))'
}

# vn_wait_rows ID WANT TIMEOUT_S: wait until vn_rows ID prints WANT.
vn_wait_rows() {
	local deadline=$((SECONDS + $3)) got
	while :; do
		got="$(vn_rows "$1")"
		[[ "$got" == "$2" ]] && return 0
		((SECONDS < deadline)) || {
			echo "# rows of $1: $got (wanted $2)" >&2
			return 1
		}
		sleep 0.1
	done
}

# vn_mail_count TO: messages in maildev addressed to TO.
vn_mail_count() {
	curl -s "$MAIL_API_URL/email" | /usr/bin/python3 -c '
import json, sys
to = sys.argv[1]
print(sum(1 for m in json.load(sys.stdin) if any(a.get("address") == to for a in m.get("to", []))))' "$1"
}

# vn_mail_last TO: the last message to TO as JSON (subject, text, html, headers).
vn_mail_last() {
	curl -s "$MAIL_API_URL/email" | /usr/bin/python3 -c '
import json, sys
to = sys.argv[1]
m = [m for m in json.load(sys.stdin) if any(a.get("address") == to for a in m.get("to", []))]
print(json.dumps(m[-1] if m else {}, ensure_ascii=False))' "$1"
}

# vn_wait_mail TO N TIMEOUT_S
vn_wait_mail() {
	local deadline=$((SECONDS + $3)) n
	while :; do
		n="$(vn_mail_count "$1")"
		((n >= $2)) && return 0
		((SECONDS < deadline)) || {
			echo "# mail to $1: $n, wanted $2" >&2
			return 1
		}
		sleep 0.1
	done
}

# vn_sql SQL: one value from PostgreSQL.
vn_sql() {
	psql -X -qAt "$DATABASE_URL" -c "$1"
}
