#!/usr/bin/env bash
# The bot through its webhook, against real Redis and RabbitMQ and the fake
# Bot API: a whole /remind conversation; the same update twice applied once;
# bad requests (secret, JSON, size); Redis stopped mid-conversation (503, then
# the conversation goes on); 50 users at once keeping each one's order; two
# instances racing on one user (compare-and-set: both steps land, in turn).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/bot_lib.sh"
vn_load_env

services="$VN_SOURCE_DIR/scripts/services"
vn_start_fake
# a queue to see what the bot publishes
mgmt="${RABBITMQ_MGMT_URL:?}"
q="vn-test-bot-$$"
curl -sf -X PUT -H 'content-type: application/json' "$mgmt/api/exchanges/%2F/vestnik" \
	-d '{"type":"topic","durable":true}' >/dev/null
curl -sf -X PUT -H 'content-type: application/json' "$mgmt/api/queues/%2F/$q" \
	-d '{"durable":false,"auto_delete":false}' >/dev/null
curl -sf -X POST -H 'content-type: application/json' "$mgmt/api/bindings/%2F/e/vestnik/q/$q" \
	-d '{"routing_key":"reminder.#"}' >/dev/null
trap 'curl -s -X DELETE "$mgmt/api/queues/%2F/'"$q"'" >/dev/null 2>&1 || true' EXIT

export TELEGRAM_API_URL="$VN_FAKE_URL" TELEGRAM_BOT_TOKEN="$VN_TOKEN"
export TELEGRAM_WEBHOOK_SECRET="$VN_SECRET" HTTP_MAX_BODY=64k RECONNECT_MAX=500ms
export FLOWS_DIR="$VN_SOURCE_DIR/examples/reminders/flows"
export TEMPLATES_DIR="$VN_SOURCE_DIR/templates/default"
vn_start_vestnik "$VN_TMP/bot1.log" bot
bot1="$VN_URL"

chat=$((700000000 + RANDOM))
id=$((RANDOM * 1000))
next() { id=$((id + 1)); }

# ---- a whole /remind conversation ------------------------------------------------
next; vn_post_update "$(vn_msg $id $chat /remind)"
vn_assert_eq "$VN_STATUS" 200 "/remind accepted"
vn_assert_eq "$(vn_conv $chat state)" ask_what "/remind asks what"
vn_wait_count sendMessage $chat 1 5 || vn_fail "no prompt sent for /remind"
vn_ok "the prompt went out through the Bot API"

next; vn_post_update "$(vn_msg $id $chat 'buy milk')"
vn_assert_eq "$(vn_conv $chat state)" ask_when "the text answers what; now when"
vn_assert_contains "$(vn_conv $chat data)" '"what":"buy milk"' "what is collected"

next; dup="$(vn_msg $id $chat 'not a date at all')"
vn_post_update "$dup"
vn_assert_eq "$(vn_conv $chat state)" ask_when "a bad date re-prompts and stays"
v1="$(vn_conv $chat version)"
vn_wait_count sendMessage $chat 3 5 || vn_fail "no re-prompt"
vn_post_update "$dup"
vn_assert_eq "$VN_STATUS" 200 "the same update again is answered 200"
vn_assert_eq "$(vn_conv $chat version)" "$v1" "... and not applied twice"
sleep 0.3
vn_assert_eq "$(vn_fake_count sendMessage $chat)" 3 "... and sends nothing twice"

next; vn_post_update "$(vn_msg $id $chat '2031-06-01 09:00')"
vn_assert_eq "$(vn_conv $chat state)" confirm "a good date asks to confirm"
vn_wait_count sendMessage $chat 4 5 || vn_fail "no confirmation question"
vn_assert_contains "$(vn_fake_last sendMessage $chat)" 'remind:yes' "the question has the inline buttons"

next; vn_post_update "$(vn_cb $id $chat remind:yes 4)"
vn_assert_eq "$VN_STATUS" 200 "the button press is accepted"
vn_assert_eq "$(vn_conv $chat flow)" "" "the flow ends after confirming"
vn_wait_count answerCallbackQuery "" 1 5 || vn_fail "the callback query was not answered"
vn_ok "the callback query is answered"
got=""
for _ in $(seq 1 50); do
	got="$(curl -s -X POST -H 'content-type: application/json' "$mgmt/api/queues/%2F/$q/get" \
		-d '{"count":1,"ackmode":"ack_requeue_false","encoding":"auto"}')"
	[[ "$got" == *reminder.scheduled* ]] && break
	sleep 0.1
done
vn_assert_contains "$got" '"routing_key":"reminder.scheduled"' "reminder.scheduled was published"
vn_assert_contains "$got" 'buy milk' "... with what to remind"
vn_assert_contains "$got" '2031-06-01T09:00' "... and when"

# ---- bad requests -------------------------------------------------------------------
next; vn_post_update "$(vn_msg $id $chat /help)" wrong-secret
vn_assert_eq "$VN_STATUS" 401 "a wrong secret token gets 401"
vn_assert_contains "$VN_BODY" '"code":"unauthorized"' "... with a JSON error"
vn_http POST /telegram/webhook -H "X-Telegram-Bot-Api-Secret-Token: $VN_SECRET" --data-binary '{"update_id": 1, "message": '
vn_assert_eq "$VN_STATUS" 400 "malformed JSON gets 400"
vn_assert_contains "$VN_BODY" 'invalid JSON' "... saying what is wrong"
vn_http POST /telegram/webhook -H "X-Telegram-Bot-Api-Secret-Token: $VN_SECRET" \
	--data-binary "$(head -c 100000 /dev/zero | tr '\0' x)"
vn_assert_eq "$VN_STATUS" 413 "a body over HTTP_MAX_BODY gets 413"

# ---- Redis stopped mid-conversation --------------------------------------------------
chat2=$((chat + 1))
next; vn_post_update "$(vn_msg $id $chat2 /remind)"
vn_assert_eq "$(vn_conv $chat2 state)" ask_what "second user starts /remind"
"$services" down redis >/dev/null
trap '"$services" up redis >/dev/null 2>&1 || true; curl -s -X DELETE "$mgmt/api/queues/%2F/'"$q"'" >/dev/null 2>&1 || true' EXIT
next; held="$(vn_msg $id $chat2 'water plants')"
vn_post_update "$held"
vn_assert_eq "$VN_STATUS" 503 "Redis down: the webhook answers 503"
"$services" up redis >/dev/null
for _ in $(seq 1 60); do
	vn_post_update "$held"
	[[ "$VN_STATUS" == 200 ]] && break
	sleep 0.25
done
vn_assert_eq "$VN_STATUS" 200 "Telegram's retry goes through once Redis is back"
vn_assert_eq "$(vn_conv $chat2 state)" ask_when "the conversation continued correctly"
vn_assert_contains "$(vn_conv $chat2 data)" '"what":"water plants"' "... with the held message applied once"

# ---- 50 users at once, each in order --------------------------------------------------
# (threads in one python process: each user's three updates go one after the
# other, as Telegram sends them; the users run side by side)
base=$((chat + 1000))
/usr/bin/python3 - "$VN_URL/telegram/webhook" "$VN_SECRET" "$base" "$id" <<'PY' || vn_fail "posting for 50 users failed"
import json, sys, threading, urllib.request
url, secret, base, uid0 = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
def msg(uid, chat, text):
    m = {"message_id": uid % 100000 + 1, "date": 1767000000,
         "chat": {"id": chat, "type": "private"},
         "from": {"id": chat, "is_bot": False, "first_name": "T", "language_code": "en"},
         "text": text}
    if text.startswith("/"):
        m["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text)}]
    return json.dumps({"update_id": uid, "message": m}).encode()
errors = []
def user(u):
    c, i = base + u, uid0 + u * 10
    for k, text in enumerate(["/remind", f"item {u}", "2031-01-02 10:00"]):
        req = urllib.request.Request(url, data=msg(i + k + 1, c, text), headers={
            "Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": secret})
        try:
            if urllib.request.urlopen(req, timeout=10).status != 200:
                errors.append(u)
        except Exception as e:
            errors.append(f"{u}: {e}")
threads = [threading.Thread(target=user, args=(u,)) for u in range(1, 51)]
for t in threads: t.start()
for t in threads: t.join()
sys.exit(1 if errors else 0)
PY
id=$((id + 1000))
bad=0
for u in $(seq 1 50); do
	c=$((base + u))
	[[ "$(vn_conv $c state)" == confirm && "$(vn_conv $c data)" == *"\"what\":\"item $u\""* ]] ||
		{ bad=$((bad + 1)); echo "# user $u: $(vn_conv $c state) $(vn_conv $c data)"; }
done
vn_assert_eq "$bad" 0 "50 users in parallel: every conversation in its own order"

# ---- two instances, one user, at the same moment ---------------------------------------
vn_start_vestnik "$VN_TMP/bot2.log" bot
bot2="$VN_URL"
c=$((chat + 5000))
next; VN_URL="$bot1" vn_post_update "$(vn_msg $id $c /remind)"
v0="$(vn_conv $c version)"
a="$(vn_msg $((id + 1)) $c 'first')" b="$(vn_msg $((id + 2)) $c 'second')"
id=$((id + 2))
/usr/bin/python3 - "$bot1/telegram/webhook" "$bot2/telegram/webhook" "$VN_SECRET" "$a" "$b" \
	>"$VN_TMP/race.st" <<'PY'
import sys, threading, urllib.request
u1, u2, secret, a, b = sys.argv[1:6]
out = {}
def post(name, url, body):
    req = urllib.request.Request(url, data=body.encode(), headers={
        "Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": secret})
    out[name] = urllib.request.urlopen(req, timeout=10).status
ts = [threading.Thread(target=post, args=("a", u1, a)), threading.Thread(target=post, args=("b", u2, b))]
for t in ts: t.start()
for t in ts: t.join()
print(f"{out.get('a')}/{out.get('b')}")
PY
vn_assert_eq "$(cat "$VN_TMP/race.st")" "200/200" "both instances answered 200"
vn_assert_eq "$(vn_conv $c version)" "$((v0 + 2))" "both steps committed, one after the other"
vn_assert_eq "$(vn_conv $c state)" ask_when "one was the answer, the other a bad date"
d="$(vn_conv $c data)"
[[ "$d" == *'"what":"first"'* || "$d" == *'"what":"second"'* ]] || vn_fail "what is neither: $d"
vn_ok "the answer that came first is kept"

code=0
vn_stop_vestnik || code=$?
vn_assert_eq "$code" 0 "instance 2 drains and exits 0"
vn_done
