#!/usr/bin/env bash
# Long polling (development mode): the same /remind conversation, taken with
# getUpdates from the fake Bot API; the offset moves only after processing,
# and a callback query is answered. The webhook is deleted first.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/bot_lib.sh"
vn_load_env

vn_start_fake

# vestnik bot --set-webhook registers the URL with the secret and allowed updates
out="$(TELEGRAM_API_URL="$VN_FAKE_URL" TELEGRAM_BOT_TOKEN="$VN_TOKEN" TELEGRAM_WEBHOOK_SECRET=hook-secret \
	"$VESTNIK_BIN" bot --set-webhook http://127.0.0.1:9/hook 2>&1)" || vn_fail "--set-webhook failed: $out"
vn_assert_contains "$out" "webhook set" "vestnik bot --set-webhook reports success"
vn_fake GET "/_fake/calls?method=setWebhook"
vn_assert_contains "$VN_BODY" '"secret_token":"hook-secret"' "... with the secret token"
vn_assert_contains "$VN_BODY" 'callback_query' "... and the allowed updates"
code=0; out="$(TELEGRAM_BOT_TOKEN= "$VESTNIK_BIN" bot --set-webhook http://x/ 2>&1)" || code=$?
vn_assert_eq "$code" 2 "--set-webhook without a token exits 2"
vn_assert_contains "$out" "TELEGRAM_BOT_TOKEN is empty" "... saying which variable to set"
# that webhook is now stale: it must not block polling

export TELEGRAM_API_URL="$VN_FAKE_URL" TELEGRAM_BOT_TOKEN="$VN_TOKEN"
export FLOWS_DIR="$VN_SOURCE_DIR/examples/reminders/flows"
export TEMPLATES_DIR="$VN_SOURCE_DIR/templates/default"
vn_start_vestnik "$VN_TMP/bot.log" bot --polling

chat=$((800000000 + RANDOM))
id=$((RANDOM * 1000 + 500000))
queue() { vn_fake POST /_fake/updates "$1"; vn_assert_eq "$VN_STATUS" 200 "$2 queued"; }
wait_state() { # STATE WHAT
	local s=""
	for _ in $(seq 1 100); do
		s="$(vn_conv $chat state)"
		[[ "$s" == "$1" ]] && break
		sleep 0.05
	done
	vn_assert_eq "$s" "$1" "$2"
}

queue "$(vn_msg $((id + 1)) $chat /remind)" "/remind"
wait_state ask_what "polling: /remind asks what"
queue "$(vn_msg $((id + 2)) $chat 'call mom')" "an answer"
wait_state ask_when "polling: the text answers what"
queue "$(vn_msg $((id + 3)) $chat '2031-03-04 18:30')" "a date"
wait_state confirm "polling: a good date asks to confirm"
vn_wait_count sendMessage $chat 3 5 || vn_fail "three prompts expected"
vn_assert_contains "$(vn_conv $chat data)" '"what":"call mom"' "polling: the data is what was said"
queue "$(vn_cb $((id + 4)) $chat remind:yes 3)" "a button press"
for _ in $(seq 1 100); do
	[[ "$(vn_conv $chat flow)" == "" ]] && break
	sleep 0.05
done
vn_assert_eq "$(vn_conv $chat flow)" "" "polling: confirming ends the flow"
vn_wait_count answerCallbackQuery "" 1 5 || vn_fail "the callback query was not answered"
vn_ok "polling: the callback query is answered"

vn_fake GET "/bot$VN_TOKEN/getWebhookInfo"
vn_assert_contains "$VN_BODY" '"url":""' "the stale webhook was deleted before polling"
vn_fake GET "/_fake/calls?method=getUpdates"
vn_assert_contains "$VN_BODY" "\"offset\":$((id + 4))" "getUpdates moved its offset past processed updates"

code=0
vn_stop_vestnik || code=$?
vn_assert_eq "$code" 0 "SIGTERM while long polling exits 0"
vn_done
