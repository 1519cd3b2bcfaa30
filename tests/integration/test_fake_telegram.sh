#!/usr/bin/env bash
# The fake Telegram Bot API server (tests/fakes/fake_telegram.c) against the
# Bot API's documented behaviour: response shapes, per-chat message ids, the
# call log, Telegram's error descriptions, injected faults (429 with
# retry_after, 5xx, 403, latency, network), getUpdates long polling with
# offsets and its 409 conflicts, webhook pushes with the secret header (in
# order, one at a time per chat) to a local receiver, getWebhookInfo errors,
# strict mode 429s, reset, and a clean exit on SIGTERM. Needs no services.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

FAKE_TELEGRAM_BIN="${FAKE_TELEGRAM_BIN:-$VN_SOURCE_DIR/build/vestnik-fake-telegram}"
PY=/usr/bin/python3
[[ -x "$FAKE_TELEGRAM_BIN" ]] || vn_fail "FAKE_TELEGRAM_BIN ($FAKE_TELEGRAM_BIN) is not an executable; build first"
[[ -x "$PY" ]] || PY="$(command -v python3)" || vn_fail "python3 is needed for the webhook receiver"

TOKEN="123456:TEST-token_abc"
FK_PIDS=()
FK_LOGS=()

# fk_cleanup: stop what this test started (by pid); show the fake's log on failure.
# shellcheck disable=SC2317 # run by the EXIT trap
fk_cleanup() {
	local rc=$? pid i
	for i in "${!FK_PIDS[@]}"; do
		pid="${FK_PIDS[$i]}"
		[[ -n "$pid" ]] || continue
		kill -TERM "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	if ((rc != 0)); then
		for i in "${!FK_LOGS[@]}"; do
			[[ -s "${FK_LOGS[$i]}" ]] || continue
			echo "# last lines of ${FK_LOGS[$i]}:"
			tail -n 30 "${FK_LOGS[$i]}" | sed 's/^/#   /'
		done
	fi
}
trap fk_cleanup EXIT

# fk_start NAME ARGS...: start a fake on port 0; sets FK_PID and FK_URL.
fk_start() {
	local name="$1" out="$VN_TMP/$1.out" log="$VN_TMP/$1.log" port="" i
	shift
	: >"$out" # exists before the fake's own redirection does, for the sed below
	"$FAKE_TELEGRAM_BIN" --port 0 "$@" >"$out" 2>"$log" </dev/null &
	FK_PID=$!
	FK_PIDS+=("$FK_PID")
	FK_LOGS+=("$log")
	for ((i = 0; i < 100; i++)); do
		port="$(sed -n '1s/^{"listening":\([0-9][0-9]*\)}$/\1/p' "$out")"
		[[ -n "$port" ]] && break
		kill -0 "$FK_PID" 2>/dev/null || vn_fail "fake $name exited before listening: $(tail -n 5 "$log")"
		sleep 0.05
	done
	[[ -n "$port" ]] || vn_fail "fake $name printed no {\"listening\":port} line within 5 s"
	FK_URL="http://127.0.0.1:$port"
}

# fk HTTPMETHOD PATH [curl args...]: one request to the fake; sets FK_STATUS
# ("000" when nothing answered), FK_BODY and FK_TIME (seconds).
fk() {
	local method="$1" path="$2" out
	shift 2
	: >"$VN_TMP/fk.body"
	out="$(curl -s -m 10 -X "$method" -o "$VN_TMP/fk.body" -w '%{http_code} %{time_total}' "$@" "$FK_URL$path" 2>/dev/null)" || true
	FK_STATUS="${out%% *}"
	FK_TIME="${out##* }"
	[[ -n "$FK_STATUS" ]] || FK_STATUS=000
	FK_BODY="$(cat "$VN_TMP/fk.body")"
}

# bot METHOD JSON: call a Bot API method with a JSON body.
bot() {
	fk POST "/bot$TOKEN/$1" -H 'Content-Type: application/json' -d "$2"
}

# jget EXPR [JSON]: a jq expression on JSON (default: FK_BODY), raw output.
jget() {
	jq -r "$1" <<<"${2:-$FK_BODY}"
}

# assert_ge A B WHAT (numbers, possibly fractional)
assert_ge() {
	if awk -v a="$1" -v b="$2" 'BEGIN { exit !(a >= b) }'; then
		vn_ok "$3"
	else
		vn_fail "$3: $1 < $2"
	fi
}

# assert_lt A B WHAT
assert_lt() {
	if awk -v a="$1" -v b="$2" 'BEGIN { exit !(a < b) }'; then
		vn_ok "$3"
	else
		vn_fail "$3: $1 >= $2"
	fi
}

now_s() {
	date +%s.%N
}

fk_start main

# --- Bot API shapes ---------------------------------------------------------
fk GET "/bot$TOKEN/getMe"
vn_assert_eq "$FK_STATUS" 200 "getMe answers 200"
vn_assert_eq "$(jget '[.ok, .result.id, .result.is_bot, .result.username] | @tsv')" \
	"$(printf 'true\t123456\ttrue\tvestnik_fake_bot')" "getMe: ok, id from the token, is_bot, username"

bot sendMessage '{"chat_id":1001,"text":"hello"}'
vn_assert_eq "$(jget '[.ok, .result.message_id, .result.chat.id, .result.chat.type, .result.text, .result.from.is_bot] | @tsv')" \
	"$(printf 'true\t1\t1001\tprivate\thello\ttrue')" "sendMessage returns a Message with message_id 1"
assert_ge "$(jget '.result.date')" "$(date +%s -d '-60 sec')" "the Message has a current date"
fk POST "/bot$TOKEN/sendMessage" --data-urlencode 'chat_id=1001' --data-urlencode 'text=second & last'
vn_assert_eq "$(jget '[.result.message_id, .result.text] | @tsv')" "$(printf '2\tsecond & last')" \
	"a form-encoded sendMessage to the same chat gets message_id 2"
fk GET "/bot$TOKEN/sendMessage?chat_id=2002&text=hi"
vn_assert_eq "$(jget '.result.message_id')" 1 "GET with query parameters works; another chat starts at 1"
fk GET "/bot$TOKEN/SENDMESSAGE?chat_id=2002&text=case"
vn_assert_eq "$(jget '.result.message_id')" 2 "method names are case-insensitive"

fk GET "/_fake/calls?method=sendMessage"
vn_assert_eq "$(jget '[.calls[0].seq > 0, .calls[0].method, .calls[0].params.chat_id, .calls[0].params.text, .calls[0].status, .calls[0].response.result.message_id] | @tsv')" \
	"$(printf 'true\tsendMessage\t1001\thello\t200\t1')" "the call log records method, params, status and response"
vn_assert_eq "$(jget '.calls[1].params.text')" "second & last" "form parameters are decoded in the log"
since="$(jget '.last_seq')"

bot sendMessage '{"chat_id":1001,"text":"<b>bold</b> and <i>it","parse_mode":"HTML"}'
vn_assert_eq "$FK_STATUS" 400 "unbalanced HTML is refused"
vn_assert_eq "$(jget '.description')" "Bad Request: can't parse entities: Can't find end tag corresponding to start tag \"i\"" \
	"with Telegram's description"
bot sendMessage '{"chat_id":1001,"text":"*v2* is 1.0","parse_mode":"MarkdownV2"}'
vn_assert_eq "$(jget '.description')" "Bad Request: can't parse entities: Character '.' is reserved and must be escaped with the preceding '\\'" \
	"an unescaped MarkdownV2 character is refused like Telegram does"
bot sendMessage '{"chat_id":1001,"text":"*v2* is 1\\.0","parse_mode":"MarkdownV2","reply_markup":{"inline_keyboard":[[{"text":"Yes","callback_data":"y"}]]}}'
vn_assert_eq "$(jget '[.result.text, .result.entities[0].type, .result.reply_markup.inline_keyboard[0][0].callback_data] | @tsv')" \
	"$(printf 'v2 is 1.0\tbold\ty')" "parsed text, entities and the inline keyboard come back"

# --- errors with Telegram's descriptions ----------------------------------------
bot sendMessage '{"chat_id":1001,"text":""}'
vn_assert_eq "$FK_STATUS" 400 "empty text: 400"
vn_assert_eq "$(jget '[.ok, .error_code, .description] | @tsv')" \
	"$(printf 'false\t400\tBad Request: message text is empty')" "empty text: Telegram's error shape and description"
bot sendMessage "{\"chat_id\":1001,\"text\":\"$(printf 'x%.0s' {1..4097})\"}"
vn_assert_eq "$(jget '.description')" "Bad Request: message is too long" "4097 characters: message is too long"
bot sendMessage '{"text":"no chat"}'
vn_assert_eq "$(jget '.description')" "Bad Request: chat_id is empty" "a missing chat_id is named"
bot editMessageText '{"chat_id":1001,"message_id":999,"text":"edit"}'
vn_assert_eq "$FK_STATUS" 400 "editing a missing message: 400"
vn_assert_eq "$(jget '.description')" "Bad Request: message to edit not found" "editing a missing message: its description"
bot editMessageText '{"chat_id":1001,"message_id":1,"text":"hello, edited"}'
vn_assert_eq "$(jget '[.result.message_id, .result.text, (.result.edit_date > 0)] | @tsv')" \
	"$(printf '1\thello, edited\ttrue')" "editing an existing message works and sets edit_date"
bot editMessageText '{"chat_id":1001,"message_id":1,"text":"hello, edited"}'
vn_assert_contains "$(jget '.description')" "Bad Request: message is not modified" "an edit that changes nothing: not modified"
bot sendMessage '{"chat_id":1001,"text":"k","reply_markup":{"inline_keyboard":[[{"text":"plain"}]]}}'
vn_assert_eq "$(jget '.description')" "Bad Request: can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard" \
	"an inline button without an action is refused"
fk POST "/bot$TOKEN/noSuchMethod"
vn_assert_eq "$FK_STATUS $(jget '.description')" "404 Not Found" "an unknown method: 404 Not Found"
fk POST /_fake/calls
vn_assert_eq "$FK_STATUS $(jget '.error.code')" "405 method_not_allowed" "a control path with the wrong method: 405"

# --- faults -----------------------------------------------------------------
fk POST /_fake/faults -H 'Content-Type: application/json' \
	-d '{"method":"sendMessage","kind":"429","retry_after":2,"count":1}'
vn_assert_eq "$FK_STATUS" 200 "a 429 fault is queued"
bot sendMessage '{"chat_id":3003,"text":"a"}'
vn_assert_eq "$FK_STATUS" 429 "the next sendMessage gets 429"
vn_assert_eq "$(jget '[.error_code, .description, .parameters.retry_after] | @tsv')" \
	"$(printf '429\tToo Many Requests: retry after 2\t2')" "with parameters.retry_after 2"
bot sendMessage '{"chat_id":3003,"text":"a"}'
vn_assert_eq "$FK_STATUS $(jget '.result.message_id')" "200 1" "the fault is used up: the call after it succeeds (nothing was sent before)"

fk POST /_fake/faults -d '[{"method":"sendMessage","kind":"5xx","status":502},{"method":"sendMessage","kind":"403","chat_id":3003}]'
bot sendMessage '{"chat_id":3003,"text":"b"}'
vn_assert_eq "$FK_STATUS $(jget '.description')" "502 Bad Gateway" "5xx fault: 502 Bad Gateway"
bot sendMessage '{"chat_id":4004,"text":"b"}'
vn_assert_eq "$FK_STATUS" 200 "a fault for one chat leaves other chats alone"
bot sendMessage '{"chat_id":3003,"text":"b"}'
vn_assert_eq "$FK_STATUS $(jget '.description')" "403 Forbidden: bot was blocked by the user" "403 fault: blocked by the user"
fk GET /_fake/faults
vn_assert_eq "$(jget '.faults | length')" 0 "used faults are gone from the list"

fk POST /_fake/faults -d '{"method":"getMe","kind":"latency","latency_ms":300}'
fk GET "/bot$TOKEN/getMe"
vn_assert_eq "$FK_STATUS" 200 "a delayed call still succeeds"
assert_ge "$FK_TIME" 0.3 "latency fault: the answer took at least 300 ms ($FK_TIME s)"

fk POST /_fake/faults -d '{"method":"getMe","kind":"network"}'
fk GET "/bot$TOKEN/getMe" -m 0.5
vn_assert_eq "$FK_STATUS" 000 "network fault: no answer (the client times out)"
fk GET "/bot$TOKEN/getMe"
vn_assert_eq "$FK_STATUS" 200 "after the network fault the next call is answered"

fk POST /_fake/faults -d '{"kind":"explode"}'
vn_assert_eq "$FK_STATUS" 400 "an unknown fault kind is refused"
vn_assert_contains "$(jget '.error.message')" 'unknown kind "explode"' "and the message names it"

# --- getUpdates -------------------------------------------------------------
t0="$(now_s)"
curl -s -m 5 -o "$VN_TMP/poll.body" -w '%{time_total}' "$FK_URL/bot$TOKEN/getUpdates?timeout=2" >"$VN_TMP/poll.time" &
poll_pid=$!
sleep 0.3
fk POST /_fake/updates -d '{"message":{"message_id":1,"date":1700000000,"chat":{"id":555,"type":"private","first_name":"Ann"},"from":{"id":555,"is_bot":false,"first_name":"Ann"},"text":"/start"}}'
t_post="$(now_s)"
vn_assert_eq "$(jget '[.queued, .update_ids[0], .delivery] | @tsv')" "$(printf '1\t1\tgetUpdates')" "an update is queued with update_id 1"
wait "$poll_pid" || true
t_end="$(awk -v a="$t0" -v b="$(cat "$VN_TMP/poll.time")" 'BEGIN { printf "%.3f", a + b }')"
poll_body="$(cat "$VN_TMP/poll.body")"
vn_assert_eq "$(jget '[.ok, (.result | length), .result[0].update_id, .result[0].message.text] | @tsv' "$poll_body")" \
	"$(printf 'true\t1\t1\t/start')" "the waiting long poll returns the posted update"
assert_lt "$(awk -v a="$t_end" -v b="$t_post" 'BEGIN { print a - b }')" 0.15 \
	"the long poll answered within ~100 ms of the post"
fk GET "/bot$TOKEN/getUpdates?offset=0"
vn_assert_eq "$(jget '.result | length')" 1 "an unconfirmed update is returned again"
fk GET "/bot$TOKEN/getUpdates?offset=2"
vn_assert_eq "$(jget '.result | length')" 0 "offset 2 confirms update 1"
fk GET /_fake/stats
vn_assert_eq "$(jget '.pending_updates')" 0 "no pending updates after the confirmation"
bot sendMessage '{"chat_id":555,"text":"welcome"}'
vn_assert_eq "$(jget '[.result.message_id, .result.chat.first_name] | @tsv')" "$(printf '2\tAnn')" \
	"the bot's reply continues the chat's message ids and shows the chat from the update"

fk POST /_fake/updates -d '[{"message":{"message_id":3,"chat":{"id":555,"type":"private"},"text":"a"}},{"message":{"message_id":4,"chat":{"id":555,"type":"private"},"text":"b"}}]'
vn_assert_eq "$(jget '.update_ids | join(",")')" "2,3" "a batch gets increasing update ids"
fk GET "/bot$TOKEN/getUpdates?offset=3&limit=5"
vn_assert_eq "$(jget '[.result[].update_id] | join(",")')" "3" "offset 3 drops update 2 and returns 3"
fk GET "/bot$TOKEN/getUpdates?offset=4"
vn_assert_eq "$(jget '.result | length')" 0 "all confirmed"

# Two long polls: the older one is ended with 409, as Telegram does.
curl -s -m 5 -o "$VN_TMP/poll1.body" "$FK_URL/bot$TOKEN/getUpdates?offset=4&timeout=5" &
poll_pid=$!
sleep 0.2
curl -s -m 5 -o "$VN_TMP/poll2.body" "$FK_URL/bot$TOKEN/getUpdates?offset=4&timeout=5" &
poll2_pid=$!
wait "$poll_pid" || true
vn_assert_eq "$(jget '[.error_code, .description] | @tsv' "$(cat "$VN_TMP/poll1.body")")" \
	"$(printf '409\tConflict: terminated by other getUpdates request; make sure that only one bot instance is running')" \
	"a second long poll ends the first with 409 Conflict"
fk POST /_fake/updates -d '{"callback_query":{"id":"77","from":{"id":555,"is_bot":false,"first_name":"Ann"},"data":"y"}}'
wait "$poll2_pid" || true
vn_assert_eq "$(jget '.result[0].callback_query.data' "$(cat "$VN_TMP/poll2.body")")" y "the second long poll gets the next update"
fk GET "/bot$TOKEN/getUpdates?offset=5"
bot answerCallbackQuery '{"callback_query_id":"77","text":"ok"}'
vn_assert_eq "$FK_STATUS $(jget '.result')" "200 true" "answerCallbackQuery answers true"
bot answerCallbackQuery '{}'
vn_assert_eq "$(jget '.description')" "Bad Request: query is too old and response timeout expired or query ID is invalid" \
	"answerCallbackQuery without an id is refused"

# --- webhook ----------------------------------------------------------------
cat >"$VN_TMP/receiver.py" <<'PY'
# Webhook receiver: one JSON line per update, written when its request ends,
# with the headers that matter and whether another request for the same chat
# was being handled at the same time.
import http.server, json, sys, threading, time
out = open(sys.argv[1], "a", buffering=1)
active, lock = {}, threading.Lock()
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        upd = json.loads(body)
        payload = next(v for k, v in upd.items() if k != "update_id")
        chat = payload.get("chat", {}).get("id")
        with lock:
            active[chat] = active.get(chat, 0) + 1
            overlap = active[chat] > 1
        time.sleep(0.1)
        with lock:
            active[chat] -= 1
            out.write(json.dumps({"secret": self.headers.get("X-Telegram-Bot-Api-Secret-Token"),
                                  "content_type": self.headers.get("Content-Type"),
                                  "chat": chat, "overlap": overlap, "update": upd}) + "\n")
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
with open(sys.argv[2], "w") as f:
    f.write(str(srv.server_address[1]))
srv.serve_forever()
PY
: >"$VN_TMP/received.jsonl"
"$PY" "$VN_TMP/receiver.py" "$VN_TMP/received.jsonl" "$VN_TMP/receiver.port" &
FK_PIDS+=("$!")
for ((i = 0; i < 100; i++)); do
	[[ -s "$VN_TMP/receiver.port" ]] && break
	sleep 0.05
done
[[ -s "$VN_TMP/receiver.port" ]] || vn_fail "the webhook receiver did not start"
hook="http://127.0.0.1:$(cat "$VN_TMP/receiver.port")/telegram/webhook"

bot setWebhook "{\"url\":\"$hook\",\"secret_token\":\"s3cr3t_-X\",\"max_connections\":10}"
vn_assert_eq "$(jget '[.result, .description] | @tsv')" "$(printf 'true\tWebhook was set')" "setWebhook: Webhook was set"
fk GET "/bot$TOKEN/getUpdates"
vn_assert_eq "$FK_STATUS $(jget '.description')" \
	"409 Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first" \
	"getUpdates while a webhook is set: 409"
fk POST /_fake/updates -d '[
  {"message":{"message_id":10,"chat":{"id":7,"type":"private"},"text":"one"}},
  {"message":{"message_id":11,"chat":{"id":7,"type":"private"},"text":"two"}},
  {"message":{"message_id":1,"chat":{"id":8,"type":"private"},"text":"other chat"}},
  {"message":{"message_id":12,"chat":{"id":7,"type":"private"},"text":"three"}}]'
vn_assert_eq "$(jget '.delivery')" webhook "updates go to the webhook"
for ((i = 0; i < 100; i++)); do
	(($(wc -l <"$VN_TMP/received.jsonl") >= 4)) && break
	sleep 0.05
done
received="$(cat "$VN_TMP/received.jsonl")"
vn_assert_eq "$(wc -l <<<"$received" | tr -d ' ')" 4 "the receiver got all four updates"
vn_assert_eq "$(jq -r '.secret' <<<"$received" | sort -u)" "s3cr3t_-X" "every push carries X-Telegram-Bot-Api-Secret-Token"
vn_assert_eq "$(jq -r '.content_type' <<<"$received" | sort -u)" "application/json" "pushes are application/json"
vn_assert_eq "$(jq -r 'select(.chat == 7) | .update.message.text' <<<"$received" | paste -sd, -)" "one,two,three" \
	"one chat's updates arrive in order"
vn_assert_eq "$(jq -r '.overlap' <<<"$received" | sort -u)" false "never two pushes at once for one chat"
ids7="$(jq -r 'select(.chat == 7) | .update.update_id' <<<"$received" | paste -sd, -)"
vn_assert_eq "$ids7" "$(tr ',' '\n' <<<"$ids7" | sort -n | paste -sd, -)" "pushed updates carry increasing update_ids ($ids7)"
fk GET "/bot$TOKEN/getWebhookInfo"
vn_assert_eq "$(jget '[.result.url, .result.pending_update_count, .result.max_connections, .result.has_custom_certificate] | @tsv')" \
	"$(printf '%s\t0\t10\tfalse' "$hook")" "getWebhookInfo: url, nothing pending, max_connections"

# A webhook nobody listens on: the error shows in getWebhookInfo, the update waits.
dead_port="$(vn_free_port)"
bot setWebhook "{\"url\":\"http://127.0.0.1:$dead_port/hook\"}"
fk POST /_fake/updates -d '{"message":{"message_id":20,"chat":{"id":9,"type":"private"},"text":"lost?"}}'
for ((i = 0; i < 60; i++)); do
	fk GET "/bot$TOKEN/getWebhookInfo"
	[[ "$(jget '.result.last_error_message // empty')" != "" ]] && break
	sleep 0.05
done
vn_assert_eq "$(jget '[.result.pending_update_count, .result.last_error_message, (.result.last_error_date > 0)] | @tsv')" \
	"$(printf '1\tConnection refused\ttrue')" "a failed push: pending 1, last_error_message and last_error_date"
bot deleteWebhook '{"drop_pending_updates":true}'
vn_assert_eq "$(jget '.description')" "Webhook was deleted" "deleteWebhook: Webhook was deleted"
fk GET "/bot$TOKEN/getWebhookInfo"
vn_assert_eq "$(jget '[.result.url, .result.pending_update_count] | @tsv')" "$(printf '\t0')" "no webhook and nothing pending after drop_pending_updates"

# --- strict mode ------------------------------------------------------------
fk POST /_fake/config -d '{"strict":true}'
vn_assert_eq "$(jget '[.strict, .limits.chat_burst, .limits.global_per_s] | @tsv')" "$(printf 'true\t3\t30')" "strict mode on, default limits"
for ((i = 0; i < 5; i++)); do
	bot sendMessage "{\"chat_id\":6006,\"text\":\"burst $i\"}"
	echo "$FK_STATUS $(jget '.parameters.retry_after // 0')" >>"$VN_TMP/strict.txt"
done
vn_assert_eq "$(grep -c '^200 ' "$VN_TMP/strict.txt")" 3 "strict: the first 3 quick sends to one private chat pass (burst 3)"
vn_assert_eq "$(grep -c '^429 ' "$VN_TMP/strict.txt")" 2 "strict: the rest get 429"
assert_ge "$(awk '$1 == 429 { print $2 }' "$VN_TMP/strict.txt" | sort -n | head -n 1)" 1 "strict: retry_after is at least 1 s"
fk GET "/_fake/calls?method=sendMessage&since=$since"
vn_assert_eq "$(jget '[.calls[] | select(.status == 429 and .limit == "chat")] | length')" 2 "the strict 429s are in the call log, marked as chat limits"
fk GET /_fake/stats
vn_assert_eq "$(jget '[.too_many_requests.strict, .sent_429] | @tsv')" "$(printf '2\t3')" \
	"stats count the 429s sent (2 strict + 1 injected)"
fk POST /_fake/config -d '{"strict":true,"limits":{"chat_per_s":2}}'
vn_assert_eq "$FK_STATUS" 200 "limits can be changed at run time"
fk POST /_fake/config -d '{"strict":"yes"}'
vn_assert_eq "$FK_STATUS" 400 "a malformed config is refused"

# --- reset, token check, shutdown -------------------------------------------
fk POST /_fake/reset
bot sendMessage '{"chat_id":1001,"text":"again"}'
vn_assert_eq "$(jget '.result.message_id')" 1 "after reset a chat starts at message_id 1 again"
fk GET /_fake/config
vn_assert_eq "$(jget '.strict')" false "reset restores the command-line config"

main_pid="$FK_PID"
fk_start tokened --token "$TOKEN" --strict
fk GET "/bot$TOKEN/getMe"
vn_assert_eq "$FK_STATUS" 200 "with --token the right token works"
fk GET "/bot999:wrong/getMe"
vn_assert_eq "$FK_STATUS $(jget '.description')" "401 Unauthorized" "with --token another token gets 401"
fk GET /_fake/config
vn_assert_eq "$(jget '.strict')" true "--strict starts in strict mode"

kill -TERM "$main_pid"
code=0
wait "$main_pid" || code=$?
vn_assert_eq "$code" 0 "SIGTERM: exits 0"
FK_PIDS[0]=""
vn_done
