# shellcheck shell=bash
# tests/integration/bot_lib.sh — helpers for the bot's integration tests:
# the fake Bot API, Telegram update JSON, and conversation state in Redis.
# Source after lib.sh.

FAKE_TELEGRAM_BIN="${FAKE_TELEGRAM_BIN:-$VN_SOURCE_DIR/build/vestnik-fake-telegram}"
VN_FAKE_PID=""
VN_FAKE_URL=""
VN_TOKEN="123456:TESTTOKEN"
VN_SECRET="s3cret-token"

# vn_start_fake [ARGS...]: the fake Bot API on a free port; sets VN_FAKE_URL.
vn_start_fake() {
	local out="$VN_TMP/fake.out" port="" i
	: >"$out"
	[[ -x "$FAKE_TELEGRAM_BIN" ]] || vn_fail "FAKE_TELEGRAM_BIN ($FAKE_TELEGRAM_BIN) is not built"
	LOG_LEVEL=warn "$FAKE_TELEGRAM_BIN" --host 127.0.0.1 --port 0 "$@" >"$out" 2>"$VN_TMP/fake.log" &
	VN_FAKE_PID=$!
	VN__PIDS+=("$VN_FAKE_PID")
	VN__LOGS+=("$VN_TMP/fake.log")
	for ((i = 0; i < 100; i++)); do
		port=$(sed -n 's/.*"listening":\([0-9]*\).*/\1/p' "$out" | head -1)
		[[ -n "$port" ]] && break
		sleep 0.05
	done
	[[ -n "$port" ]] || vn_fail "the fake Bot API did not start: $(cat "$VN_TMP/fake.log")"
	VN_FAKE_URL="http://127.0.0.1:$port"
}

# vn_fake METHOD PATH [JSON]: a control call to the fake; sets VN_STATUS, VN_BODY.
vn_fake() {
	local args=()
	[[ $# -ge 3 ]] && args=(-H 'Content-Type: application/json' --data-binary "$3")
	vn_http "$1" "$VN_FAKE_URL$2" "${args[@]}"
}

# vn_fake_count METHOD [CHAT]: how many calls of METHOD the fake recorded (to CHAT).
vn_fake_count() {
	vn_fake GET "/_fake/calls?method=$1"
	/usr/bin/python3 -c '
import json, sys
calls = json.loads(sys.stdin.read())["calls"]
chat = sys.argv[1] if len(sys.argv) > 1 else ""
print(sum(1 for c in calls if not chat or str(c["params"].get("chat_id")) == chat))' ${2:+"$2"} <<<"$VN_BODY"
}

# vn_fake_last METHOD [CHAT]: the params of the last such call, as JSON.
vn_fake_last() {
	vn_fake GET "/_fake/calls?method=$1"
	/usr/bin/python3 -c '
import json, sys
calls = json.loads(sys.stdin.read())["calls"]
chat = sys.argv[1] if len(sys.argv) > 1 else ""
m = [c for c in calls if not chat or str(c["params"].get("chat_id")) == chat]
print(json.dumps(m[-1]["params"] if m else {}, ensure_ascii=False))' ${2:+"$2"} <<<"$VN_BODY"
}

# vn_wait_count METHOD CHAT N TIMEOUT_S: wait until the fake saw N such calls.
vn_wait_count() {
	local deadline=$((SECONDS + $4)) n
	while :; do
		n=$(vn_fake_count "$1" "$2")
		((n >= $3)) && return 0
		((SECONDS < deadline)) || { echo "# $1 to $2: $n calls, wanted $3" >&2; return 1; }
		sleep 0.05
	done
}

# vn_msg UPDATE_ID CHAT TEXT [LANG]: a private text message update (JSON).
vn_msg() {
	/usr/bin/python3 -c '
import json, sys
uid, chat, text = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
lang = sys.argv[4] if len(sys.argv) > 4 else "en"
m = {"message_id": uid % 100000 + 1, "date": 1767000000,
     "chat": {"id": chat, "type": "private", "first_name": "T"},
     "from": {"id": chat, "is_bot": False, "first_name": "T", "language_code": lang},
     "text": text}
if text.startswith("/"):
    m["entities"] = [{"type": "bot_command", "offset": 0,
                      "length": len(text.split(" ")[0].encode("utf-16-le")) // 2}]
print(json.dumps({"update_id": uid, "message": m}, ensure_ascii=False))' "$@"
}

# vn_cb UPDATE_ID CHAT DATA MESSAGE_ID: a callback query from a button.
vn_cb() {
	/usr/bin/python3 -c '
import json, sys
uid, chat, data, mid = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
print(json.dumps({"update_id": uid, "callback_query": {
    "id": str(uid * 7 + 1), "chat_instance": "ci", "data": data,
    "from": {"id": chat, "is_bot": False, "first_name": "T", "language_code": "en"},
    "message": {"message_id": mid, "date": 1767000000,
                "chat": {"id": chat, "type": "private"}, "text": "x"}}}))' "$@"
}

# vn_post_update JSON [SECRET]: POST an update to vestnik's webhook.
vn_post_update() {
	vn_http POST /telegram/webhook -H 'Content-Type: application/json' \
		-H "X-Telegram-Bot-Api-Secret-Token: ${2:-$VN_SECRET}" --data-binary "$1"
}

# vn_conv CHAT FIELD: a field of the conversation (chat = user in private chats).
vn_conv() {
	redis-cli -u "$REDIS_URL" --no-auth-warning HGET "vn:conv:{$1:$1}" "$2"
}
