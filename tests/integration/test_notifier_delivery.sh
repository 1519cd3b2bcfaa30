#!/usr/bin/env bash
# The notifier end to end with real RabbitMQ, PostgreSQL, Redis, the SMTP sink
# (maildev, behind tests/fakes/smtp_fault_proxy.py so SMTP replies can be
# faulted) and the fake Bot API: registering users, a task event on Telegram
# and e-mail in the user's language, the same event twice, poison messages,
# SMTP 4xx retried, Telegram 403 falling back to e-mail, quiet hours.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/bot_lib.sh
. "$(dirname "$0")/bot_lib.sh"
# shellcheck source=tests/integration/ntf_lib.sh
. "$(dirname "$0")/ntf_lib.sh"

vn_load_env
trap vn_ntf_cleanup EXIT
vn_ntf_db

# The SMTP fault proxy in front of maildev.
coproc PROXY { exec /usr/bin/python3 "$VN_SOURCE_DIR/tests/fakes/smtp_fault_proxy.py" \
	--upstream "${SMTP_HOST:-127.0.0.1}:${SMTP_PORT:-1025}" --parent-pid $$; }
VN__PIDS+=("$PROXY_PID")
VN__LOGS+=("/dev/null")
read -r ready smtp_port ctl_port <&"${PROXY[0]}" || vn_fail "the SMTP fault proxy did not start"
[[ "$ready" == READY ]] || vn_fail "the SMTP fault proxy said: $ready"
proxy() { /usr/bin/python3 -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall((sys.argv[2] + "\n").encode())
print(s.makefile().readline().strip())' "$ctl_port" "$1"; }

vn_start_fake
SMTP_PORT="$smtp_port"
vn_ntf_env
vn_start_vestnik "$VN_TMP/notifier.log" notifier
vn_wait_for 200 GET /readyz 20 || vn_fail "the notifier is not ready: $VN_BODY"
vn_ok "the notifier is ready (queues declared: $NOTIFY_QUEUE_PREFIX.*)"
args="$(vn_json 'j["arguments"]["x-queue-type"], j["arguments"]["x-delivery-limit"], j["arguments"]["x-dead-letter-routing-key"], j["durable"]' \
	"$(curl -s "$RABBITMQ_MGMT_URL/api/queues/%2F/$NOTIFY_QUEUE_PREFIX.tasks")")"
vn_assert_eq "$args" "('quorum', 20, '$NOTIFY_QUEUE_PREFIX.dead', True)" \
	"work queues are durable quorum queues that dead-letter a message delivered 20 times"
ttl="$(vn_json 'j["arguments"]["x-message-ttl"], j["arguments"]["x-dead-letter-routing-key"]' \
	"$(curl -s "$RABBITMQ_MGMT_URL/api/queues/%2F/$NOTIFY_QUEUE_PREFIX.tasks.retry.2s")")"
vn_assert_eq "$ttl" "(2000, '$NOTIFY_QUEUE_PREFIX.tasks')" "the 2 s retry queue expires messages back to the work queue"

u1="ann-$VN_RUN_ID" tg1=$((100000 + RANDOM)) mail1="ann-$VN_RUN_ID@example.com"

# ---- registering recipients ---------------------------------------------------------
vn_api PUT "/v1/users/$u1" "{\"email\":\"$mail1\",\"display_name\":\"Анна\",\"locale\":\"ru\",
  \"time_zone\":\"Europe/Moscow\",\"preferences\":{\"channels\":{\"*\":[\"telegram\",\"email\"]}},
  \"telegram\":{\"telegram_user_id\":$tg1,\"chat_id\":$tg1}}"
vn_assert_eq "$VN_STATUS" 201 "PUT /v1/users/{id} registers a user (201)"
vn_assert_eq "$(vn_json 'j["telegram"][0]["chat_id"], j["locale"], j["preferences"]["fallback_order"]')" \
	"($tg1, 'ru', ['telegram', 'email'])" "... with the Telegram link, locale and default fallback order"
vn_api PUT "/v1/users/$u1" '{"display_name":"Анна Петрова"}'
vn_assert_eq "$VN_STATUS" 200 "a second PUT updates (200)"
vn_assert_eq "$(vn_json 'j["display_name"], j["email"]')" "('Анна Петрова', '$mail1')" \
	"... and fields left out keep their value"
vn_api PUT "/v1/users/$u1" '{"time_zone":"Mars/Olympus"}'
vn_assert_eq "$VN_STATUS:$(vn_json 'j["error"]["code"]')" "400:invalid_user" "an unknown time zone is refused"
vn_assert_contains "$VN_BODY" "time_zone" "... naming the field"
vn_api PUT "/v1/users/$u1" '{"preferences":{"channels":{"task.due":["sms"]}}}'
vn_assert_contains "$VN_STATUS $VN_BODY" '400' "an unknown channel is refused"
vn_assert_contains "$VN_BODY" 'preferences.channels.task.due[0]' "... naming where"
vn_api PUT "/v1/users/$u1" '{"email":"not an address"}'
vn_assert_eq "$VN_STATUS" 400 "a bad e-mail address is refused (by the schema's check)"
vn_assert_contains "$VN_BODY" 'users_email_format' "... naming the constraint"
vn_http PUT "/v1/users/$u1" --data-binary '{}'
vn_assert_eq "$VN_STATUS" 401 "no API key: 401"

# ---- a task event reaches Telegram and e-mail, in the user's language -------------------
id="$(vn_send task.assigned --to "user:$u1" --data '{"task":{"id":"T-1","title":"Починить сборку","due_at":"2031-05-05T10:00:00Z"},"assigned_by":{"name":"Борис"}}')"
[[ -n "$id" ]] || vn_fail "vestnik send printed no id: $(cat "$VN_TMP/send.log")"
vn_wait_rows "$id" "$u1:email:sent,$u1:telegram:sent" 15 || vn_fail "task.assigned was not delivered"
vn_ok "task.assigned: one row per channel, both sent"
msg="$(vn_fake_last sendMessage "$tg1")"
vn_assert_contains "$msg" 'Новая задача' "the Telegram message is the Russian template"
vn_assert_contains "$msg" 'Починить сборку' "... with the task"
vn_assert_contains "$msg" '"parse_mode": "HTML"' "... as HTML"
vn_assert_contains "$msg" '13:00' "... the due time in the user's zone (10:00Z = 13:00 in Moscow)"
vn_wait_mail "$mail1" 1 10 || vn_fail "no e-mail arrived"
mail="$(vn_mail_last "$mail1")"
vn_assert_eq "$(vn_json 'j["subject"]' "$mail")" "Новая задача: Починить сборку" \
	"the e-mail subject is the Russian template (UTF-8 header decoded by the sink)"
vn_assert_contains "$(vn_json 'j["to"][0]["name"]' "$mail")" 'Анна Петрова' "... addressed by name"
vn_assert_contains "$(vn_json 'j["text"]' "$mail")" 'Борис' "... with a text part"
vn_assert_contains "$(vn_json 'j["html"]' "$mail")" '<h2' "... and an HTML part"
vn_api GET "/v1/notifications/$id"
vn_assert_eq "$(vn_json '[(d["attempts"], d["provider_ref"] is not None) for d in j["deliveries"]]')" \
	"[[1, true], [1, true]]" "GET /v1/notifications/{id}: one attempt each, with the provider's reference"

# ---- the same event twice is delivered once per channel --------------------------------
tg_before="$(vn_fake_count sendMessage "$tg1")" mail_before="$(vn_mail_count "$mail1")"
env="{\"id\":\"$(cat /proc/sys/kernel/random/uuid)\",\"type\":\"task.due\",\"version\":1,
  \"occurred_at\":\"2026-11-21T10:00:00Z\",\"source\":\"tests\",\"recipients\":[{\"user_id\":\"$u1\"}],
  \"data\":{\"task\":{\"id\":\"T-2\",\"title\":\"Отчёт\",\"due_at\":\"2031-05-05T10:00:00Z\"}}}"
vn_publish_raw task.due "$env" >/dev/null
vn_publish_raw task.due "$env" >/dev/null
id2="$(vn_json 'j["id"]' "$env")"
vn_wait_rows "$id2" "$u1:email:sent,$u1:telegram:sent" 15 || vn_fail "task.due was not delivered"
vn_publish_raw task.due "$env" >/dev/null # once more, after it was delivered
sleep 1
vn_assert_eq "$(($(vn_fake_count sendMessage "$tg1") - tg_before))" 1 "published three times: one Telegram message"
vn_assert_eq "$(($(vn_mail_count "$mail1") - mail_before))" 1 "... and one e-mail"
vn_assert_eq "$(vn_sql "SELECT count(*) FROM notify.deliveries WHERE event_id = '$id2'")" 2 "... and two delivery rows"
dk="tests:$VN_RUN_ID:dedup"
a="$(vn_send notification.requested --to "user:$u1" --channels telegram --dedup-key "$dk" --data '{"title":"once"}')"
b="$(vn_send notification.requested --to "user:$u1" --channels telegram --dedup-key "$dk" --data '{"title":"once"}')"
vn_wait_rows "$a" "$u1:telegram:sent" 10 || vn_fail "the first dedup_key event was not delivered"
sleep 0.5
vn_assert_eq "$(vn_rows "$b")" "none" "a second event with the same dedup_key is dropped as a duplicate"

# ---- poison messages go to the dead-letter queue; the next good one is delivered -------
vn_dead_get 100 >/dev/null
vn_publish_raw task.assigned '{"id": "broken' >/dev/null
vn_publish_raw task.assigned '[1,2,3]' >/dev/null
vn_publish_raw task.assigned "$(vn_json 'dict(j, id="'"$(cat /proc/sys/kernel/random/uuid)"'", type="task.exploded")' "$env")" >/dev/null
vn_publish_raw task.assigned "$(vn_json 'dict(j, id="'"$(cat /proc/sys/kernel/random/uuid)"'", version=2)' "$env")" >/dev/null
vn_publish_raw task.assigned "$(vn_json 'dict(j, id="'"$(cat /proc/sys/kernel/random/uuid)"'", recipients=None)' "$env")" >/dev/null
vn_publish_raw task.assigned "$(vn_json 'dict(j, id="'"$(cat /proc/sys/kernel/random/uuid)"'", occurred_at="yesterday")' "$env")" >/dev/null
vn_json 'dict(j, id="'"$(cat /proc/sys/kernel/random/uuid)"'", data={"task": {"id": "x", "title": "big", "pad": "x" * 300000}})' "$env" |
	vn_publish_raw task.assigned - >/dev/null
good="$(vn_send task.completed --to "user:$u1" --channels telegram --data '{"task":{"id":"T-3","title":"after the poison"}}')"
vn_wait_rows "$good" "$u1:telegram:sent" 15 || vn_fail "the good event after the poison was not delivered"
vn_ok "the event after seven poison messages is delivered"
dead=""
for _ in $(seq 1 50); do
	dead="$(vn_dead_get 20)"
	[[ "$(vn_json 'len(j)' "$dead")" -ge 7 ]] && break
	sleep 0.1
done
codes="$(vn_json '",".join(sorted(m["properties"]["headers"]["x-vestnik-reason-code"] for m in j))' "$dead")"
vn_assert_eq "$codes" "invalid_field,invalid_json,missing_field,not_object,too_large,unknown_type,unsupported_version" \
	"every poison message is dead-lettered with its reason code"
vn_assert_contains "$(vn_json '[m["properties"]["headers"]["x-vestnik-reason"] for m in j]' "$dead")" \
	"occurred_at: not an RFC 3339" "... and a reason naming the field"
vn_assert_eq "$(vn_json '{(m["properties"]["headers"]["x-vestnik-attempts"], m["properties"]["headers"]["x-vestnik-queue"]) for m in j}' "$dead")" \
	"{(1, '$NOTIFY_QUEUE_PREFIX.tasks')}" "... with the attempt count and the queue it came from"
vn_assert_contains "$(vn_json '[m["payload"] for m in j]' "$dead")" '{\"id\": \"broken' "... and the body as it was"

# ---- SMTP 4xx is retried, then delivered ------------------------------------------------
u2="bob-$VN_RUN_ID" mail2="bob-$VN_RUN_ID@example.com"
vn_api PUT "/v1/users/$u2" "{\"email\":\"$mail2\",\"preferences\":{\"channels\":{\"*\":[\"email\"]}}}"
vn_assert_eq "$VN_STATUS" 201 "a user who wants e-mail only"
vn_assert_eq "$(proxy "fault RCPT 1 $mail2 451 4.3.0 try again later")" "ok" "the SMTP sink will answer 451 once"
id3="$(vn_send notification.requested --to "user:$u2" --data '{"title":"Retry me"}')"
vn_wait_rows "$id3" "$u2:email:retrying" 10 || vn_fail "the 451 did not make the row retrying"
vn_api GET "/v1/notifications/$id3"
vn_assert_contains "$(vn_json 'j["deliveries"][0]["last_error"]')" "451" "the row says why: the 451"
vn_wait_rows "$id3" "$u2:email:sent" 15 || vn_fail "the retry did not deliver"
vn_api GET "/v1/notifications/$id3"
vn_assert_eq "$(vn_json 'j["deliveries"][0]["attempts"]')" 2 "the retry ladder delivered it on attempt 2"
vn_assert_eq "$(vn_mail_count "$mail2")" 1 "... exactly one e-mail arrived"
vn_assert_eq "$(proxy "fault RCPT 1 $mail2 550 5.1.1 no such user")" "ok" "the SMTP sink will answer 550 once"
id4="$(vn_send notification.requested --to "user:$u2" --data '{"title":"Permanent"}')"
vn_wait_rows "$id4" "$u2:email:failed" 10 || vn_fail "a 550 did not fail the row"
vn_ok "a 5xx is final (no fallback channel for this user)"

# ---- Telegram 403 falls back to e-mail --------------------------------------------------
u3="cy-$VN_RUN_ID" tg3=$((200000 + RANDOM)) mail3="cy-$VN_RUN_ID@example.com"
vn_api PUT "/v1/users/$u3" "{\"email\":\"$mail3\",\"telegram\":{\"telegram_user_id\":$tg3},
  \"preferences\":{\"channels\":{\"*\":[\"telegram\"]},\"fallback_order\":[\"telegram\",\"email\"]}}"
vn_fake POST /_fake/faults "{\"method\":\"sendMessage\",\"kind\":\"403\",\"chat_id\":$tg3,\"count\":-1}"
id5="$(vn_send task.assigned --to "user:$u3" --data '{"task":{"id":"T-5","title":"Blocked"}}')"
vn_wait_rows "$id5" "$u3:email:sent,$u3:telegram:failed" 15 || vn_fail "403 did not fall back to e-mail"
vn_ok "Telegram 403: the row failed, an e-mail row was sent instead"
vn_wait_mail "$mail3" 1 10 || vn_fail "the fallback e-mail did not arrive"
vn_api GET "/v1/users/$u3"
vn_assert_eq "$(vn_json 'j["telegram"][0]["active"], j["telegram"][0]["blocked_at"] is not None')" \
	"(False, True)" "... and the Telegram link is marked blocked"
id6="$(vn_send task.due --to "user:$u3" --data '{"task":{"id":"T-6","title":"Later"}}')"
vn_wait_rows "$id6" "$u3:email:sent,$u3:telegram:skipped" 15 || vn_fail "the next event did not go to e-mail"
vn_ok "the next event skips Telegram (no active link) and goes to e-mail"
vn_api PUT "/v1/users/$u3" "{\"display_name\":\"Cy\",\"telegram\":{\"telegram_user_id\":$tg3}}"
vn_assert_eq "$(vn_json 'j["telegram"][0]["active"]')" "False" "a PUT that repeats the link does not undo the block"
vn_api PUT "/v1/users/$u3" "{\"telegram\":{\"telegram_user_id\":$tg3,\"active\":true}}"
vn_assert_eq "$(vn_json 'j["telegram"][0]["active"], j["telegram"][0]["blocked_at"]')" "(True, None)" \
	"\"active\": true reactivates it (the user unblocked the bot)"

# ---- quiet hours: deferred, not dropped; critical goes through --------------------------
u4="dee-$VN_RUN_ID" tg4=$((300000 + RANDOM))
read -r qs qe < <(date -u -d '-1 hour' '+%H:%M' | tr '\n' ' ' && date -u -d '+2 hours' '+%H:%M')
vn_api PUT "/v1/users/$u4" "{\"time_zone\":\"UTC\",\"telegram\":{\"telegram_user_id\":$tg4},
  \"preferences\":{\"quiet_hours\":{\"start\":\"$qs\",\"end\":\"$qe\"}}}"
vn_assert_eq "$VN_STATUS" 201 "a user whose quiet hours are now ($qs-$qe UTC)"
id7="$(vn_send notification.requested --to "user:$u4" --data '{"title":"Not now"}')"
vn_wait_rows "$id7" "$u4:telegram:pending" 10 || vn_fail "the event was not deferred"
vn_api GET "/v1/notifications/$id7"
vn_assert_contains "$(vn_json 'j["deliveries"][0]["next_attempt_at"]')" "T$qe" "a normal event waits for the end of quiet hours"
vn_assert_contains "$(vn_json 'j["deliveries"][0]["last_error"]')" "quiet hours" "... and says why"
id8="$(vn_send notification.requested --priority critical --to "user:$u4" --data '{"title":"Now"}')"
vn_wait_rows "$id8" "$u4:telegram:sent" 10 || vn_fail "a critical event waited"
vn_ok "a critical event bypasses quiet hours"
vn_assert_eq "$(vn_fake_count sendMessage "$tg4")" 1 "... only the critical one was sent"
# Time passes: the quiet hours end (the row becomes due) and the scheduler sends it.
vn_sql "UPDATE notify.deliveries SET next_attempt_at = now() WHERE event_id = '$id7'" >/dev/null
vn_wait_rows "$id7" "$u4:telegram:sent" 10 || vn_fail "the deferred event was not sent when due"
vn_ok "when quiet hours end, the deferred event is sent"

# ---- the bot's /settings: preferences.update_requested ------------------------------------
tg5=$((600000 + RANDOM))
send_prefs() {
	vn_send preferences.update_requested --to "tg:$tg5" --data "$1" >/dev/null ||
		vn_fail "vestnik send preferences.update_requested failed: $(cat "$VN_TMP/send.log")"
}
send_prefs '{"locale":"ru","time_zone":"Europe/Moscow"}'
qs5="$(TZ=Europe/Moscow date -d '-1 hour' '+%H:%M')" qe5="$(TZ=Europe/Moscow date -d '+2 hours' '+%H:%M')"
send_prefs "{\"quiet_hours\":{\"from\":\"$qs5\",\"to\":\"$qe5\"}}"
send_prefs '{"toggle_channel":"email"}'
for _ in $(seq 1 50); do
	vn_api GET "/v1/users/tg:$tg5"
	[[ "$VN_STATUS" == 200 && "$(vn_json 'j["preferences"]["channels"]')" == *email* ]] && break
	sleep 0.1
done
vn_assert_eq "$VN_STATUS" 200 "a Telegram user's /settings create their user (tg:<id>) with a link"
vn_assert_eq "$(vn_json 'j["locale"], j["time_zone"], j["telegram"][0]["telegram_user_id"]')" \
	"('ru', 'Europe/Moscow', $tg5)" "... with the language and time zone"
vn_assert_eq "$(vn_json 'j["preferences"]["channels"], j["preferences"]["quiet_hours"] is not None')" \
	"({'*': ['telegram', 'email']}, True)" "... quiet hours, and e-mail toggled on next to Telegram"
id10="$(vn_send notification.requested --to "tg:$tg5" --data '{"title":"Тихо"}')"
vn_wait_rows "$id10" "tg:$tg5:email:skipped,tg:$tg5:telegram:pending" 10 ||
	vn_fail "the bot user's quiet hours were not applied"
vn_ok "an event to that Telegram account waits for the quiet hours set in /settings (e-mail: skipped, no address)"
send_prefs '{"quiet_hours":null}'
send_prefs '{"toggle_channel":"email"}'
for _ in $(seq 1 50); do
	vn_api GET "/v1/users/tg:$tg5"
	[[ "$(vn_json 'j["preferences"]["quiet_hours"]')" == None ]] && break
	sleep 0.1
done
vn_assert_eq "$(vn_json 'j["preferences"]["channels"], j["preferences"]["quiet_hours"]')" \
	"({'*': ['telegram']}, None)" "quiet hours off and e-mail toggled off again"
vn_send preferences.update_requested --to "tg:$tg5" --data '{"nothing":1}' >/dev/null 2>&1 &&
	vn_fail "a settings event without a change was accepted"
vn_ok "a settings event without a change is refused (it would be dead-lettered)"

# ---- the HTTP API --------------------------------------------------------------------------
vn_api POST /v1/notifications "{\"type\":\"notification.requested\",\"recipients\":[{\"user_id\":\"$u1\"}],
  \"channels\":[\"telegram\"],\"data\":{\"title\":\"via HTTP\"}}"
vn_assert_eq "$VN_STATUS" 202 "POST /v1/notifications accepts an envelope (id, version, occurred_at, source filled)"
id9="$(vn_json 'j["id"]')"
vn_wait_rows "$id9" "$u1:telegram:sent" 10 || vn_fail "the HTTP event was not delivered"
vn_ok "... and it is delivered"
vn_api POST /v1/notifications '{"type":"task.assigned","recipients":[{"user_id":"x"}],"data":{}}'
vn_assert_eq "$VN_STATUS:$(vn_json 'j["error"]["code"]')" "400:missing_field" "a bad envelope: 400 with the reason code"
vn_assert_contains "$VN_BODY" "data.task" "... naming the field"
vn_api POST /v1/notifications '{"type":"reminder.fired","recipients":[{"user_id":"x"}],"data":{}}'
vn_assert_eq "$(vn_json 'j["error"]["code"]')" "unknown_type" "the internal reminder.fired type is refused over HTTP"
vn_api POST /v1/notifications '{"type":"notification.requested","recipients":[{"user_id":"x"}],"data":{"title":"t"},}'
vn_assert_eq "$VN_STATUS:$(vn_json 'j["error"]["code"]')" "400:invalid_json" "sloppy JSON (a trailing comma) is refused as RabbitMQ's consumer would"
head -c 300000 /dev/zero | tr '\0' ' ' >"$VN_TMP/big.json"
vn_http POST /v1/notifications -H "Authorization: Bearer $VN_API_KEY" --data-binary "@$VN_TMP/big.json"
vn_assert_eq "$VN_STATUS:$(vn_json 'j["error"]["code"]')" "413:too_large" "a body over NOTIFY_MAX_EVENT_BYTES: 413 too_large"
vn_api GET "/v1/notifications/$(cat /proc/sys/kernel/random/uuid)"
vn_assert_eq "$VN_STATUS" 404 "an unknown event id: 404"
vn_api GET /v1/notifications/nope
vn_assert_eq "$VN_STATUS" 400 "a malformed event id: 400"
vn_http GET "/v1/notifications/$id9"
vn_assert_eq "$VN_STATUS" 401 "no API key: 401"

vn_http GET /metrics
vn_assert_contains "$VN_BODY" 'vestnik_notifier_dead_letters_total{reason="too_large"} 1' "metrics count dead letters by reason"
vn_stop_vestnik || vn_fail "the notifier did not stop cleanly on SIGTERM"
vn_ok "SIGTERM: the notifier drains and exits 0"
vn_done
