#!/usr/bin/env bash
# Reminders: stored in PostgreSQL, fired on time by the scheduler, again after
# a restart in between, never when cancelled (even when the cancel comes
# first), and exactly once with two notifiers running.
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
vn_start_fake
vn_ntf_env
vn_start_vestnik "$VN_TMP/notifier1.log" notifier
vn_wait_for 200 GET /readyz 20 || vn_fail "the notifier is not ready: $VN_BODY"
first_url="$VN_URL" first_pid="$VN_PID"

u="rem-$VN_RUN_ID" tg=$((400000 + RANDOM))
vn_api PUT "/v1/users/$u" "{\"locale\":\"en\",\"telegram\":{\"telegram_user_id\":$tg}}"
vn_assert_eq "$VN_STATUS" 201 "a user with a Telegram link"

now_ms() { date +%s%3N; }
at() { date -u -d "@$(($1 / 1000)).$(printf '%03d' $(($1 % 1000)))" '+%Y-%m-%dT%H:%M:%S.%3NZ'; }
# schedule ID TEXT AT_MS: a reminder.scheduled event for the user.
schedule() {
	vn_send reminder.scheduled --to "user:$u" --deliver-at "$(at "$3")" \
		--data "{\"reminder\":{\"id\":\"$1\",\"text\":\"$2\"}}" >/dev/null ||
		vn_fail "vestnik send reminder.scheduled failed: $(cat "$VN_TMP/send.log")"
}
# fired_at TEXT: at_ms of the first sendMessage whose text holds TEXT ("" if none).
fired_at() {
	vn_fake GET "/_fake/calls?method=sendMessage"
	vjson 'next((str(c["at_ms"]) for c in j["calls"] if sys.argv[2] in c["params"].get("text", "")), "")' \
		"$VN_BODY" "$1" 2>/dev/null || true
}
fired_count() {
	vn_fake GET "/_fake/calls?method=sendMessage"
	vjson 'sum(1 for c in j["calls"] if sys.argv[2] in c["params"].get("text", ""))' "$VN_BODY" "$1"
}
# vjson EXPR JSON [ARGS...]: like vn_json, with extra arguments in sys.argv[2:].
vjson() {
	local expr="$1"
	shift
	/usr/bin/python3 -c "
import json, sys
j = json.loads(sys.argv[1])
v = $expr
print(json.dumps(v, ensure_ascii=False) if isinstance(v, (dict, list)) else v)" "$@"
}
# wait_fired TEXT TIMEOUT_S: wait until a message with TEXT was sent; prints its at_ms.
wait_fired() {
	local deadline=$((SECONDS + $2)) t
	while :; do
		t="$(fired_at "$1")"
		[[ -n "$t" ]] && {
			echo "$t"
			return 0
		}
		((SECONDS < deadline)) || return 1
		sleep 0.05
	done
}

# ---- on time -----------------------------------------------------------------------------
ta=$(($(now_ms) + 3000))
schedule "a-$VN_RUN_ID" "water the plants $VN_RUN_ID" "$ta"
id_a="$(vn_sql "SELECT event_id FROM notify.reminders WHERE id = 'a-$VN_RUN_ID'")"
[[ -n "$id_a" ]] || sleep 0.5
id_a="$(vn_sql "SELECT event_id FROM notify.reminders WHERE id = 'a-$VN_RUN_ID'")"
vn_assert_eq "$(vn_sql "SELECT state FROM notify.reminders WHERE id = 'a-$VN_RUN_ID'")" scheduled \
	"reminder.scheduled is stored, not sent"
vn_assert_eq "$(fired_count "water the plants $VN_RUN_ID")" 0 "... nothing is sent before its time"
got="$(wait_fired "water the plants $VN_RUN_ID" 10)" || vn_fail "the reminder did not fire"
late=$((got - ta))
((late >= 0 && late <= 1000)) || vn_fail "the reminder fired ${late} ms after its time (want 0..1000)"
vn_ok "the reminder fired ${late} ms after its time"
vn_assert_contains "$(vn_fake_last sendMessage "$tg")" "Reminder" "... with the reminder template"
sleep 0.3
vn_assert_eq "$(vn_sql "SELECT state FROM notify.reminders WHERE id = 'a-$VN_RUN_ID'")" fired "... and is marked fired"
vn_api GET "/v1/notifications/$id_a"
fired_id="$(vn_json 'j["reminder"]["fired_event_id"]')"
vn_assert_eq "$(vn_json 'j["reminder"]["state"]')" fired "GET /v1/notifications/{id} shows the reminder fired"
vn_wait_rows "$fired_id" "$u:telegram:sent" 5 || vn_fail "no delivery row for the firing"
vn_ok "... and its firing's delivery rows under fired_event_id"

# ---- a restart in between ---------------------------------------------------------------
tb=$(($(now_ms) + 6000))
schedule "b-$VN_RUN_ID" "call mom $VN_RUN_ID" "$tb"
sleep 0.5
vn_stop_vestnik "$first_pid" || vn_fail "the notifier did not stop cleanly"
vn_ok "the notifier stopped with a reminder pending"
sleep 1
vn_start_vestnik "$VN_TMP/notifier2.log" notifier
vn_wait_for 200 GET /readyz 20 || vn_fail "the restarted notifier is not ready"
got="$(wait_fired "call mom $VN_RUN_ID" 15)" ||
	vn_fail "the reminder did not fire after the restart (reminder: $(vn_sql "SELECT state, deliver_at, lease_owner FROM notify.reminders WHERE id = 'b-$VN_RUN_ID'"))"
late=$((got - tb))
((late >= 0 && late <= 1000)) || vn_fail "after a restart the reminder fired ${late} ms after its time"
vn_ok "after a restart in between, the reminder fired ${late} ms after its time"

# ---- while no notifier runs: fires as soon as one is back ---------------------------------
tc=$(($(now_ms) + 1500))
schedule "c-$VN_RUN_ID" "late one $VN_RUN_ID" "$tc"
vn_stop_vestnik || vn_fail "the notifier did not stop cleanly"
sleep 3
vn_assert_eq "$(fired_count "late one $VN_RUN_ID")" 0 "with no notifier running nothing fires"
vn_start_vestnik "$VN_TMP/notifier3.log" notifier
wait_fired "late one $VN_RUN_ID" 10 >/dev/null || vn_fail "the overdue reminder did not fire after the start"
vn_ok "a reminder that came due while no notifier ran fires when one starts"

# ---- cancelled ones never fire ----------------------------------------------------------
td=$(($(now_ms) + 2000))
schedule "d-$VN_RUN_ID" "cancelled $VN_RUN_ID" "$td"
vn_send reminder.cancelled --data "{\"reminder_id\":\"d-$VN_RUN_ID\"}" >/dev/null || vn_fail "cancel failed"
vn_send reminder.cancelled --data "{\"reminder_id\":\"e-$VN_RUN_ID\"}" >/dev/null || vn_fail "cancel failed"
sleep 0.5
schedule "e-$VN_RUN_ID" "cancelled first $VN_RUN_ID" "$td"
sleep 3.5
vn_assert_eq "$(fired_count "cancelled $VN_RUN_ID")" 0 "a cancelled reminder never fires"
vn_assert_eq "$(fired_count "cancelled first $VN_RUN_ID")" 0 "... nor one whose cancel arrived before it"
vn_assert_eq "$(vn_sql "SELECT string_agg(state, ',' ORDER BY id) FROM notify.reminders WHERE id IN ('d-$VN_RUN_ID', 'e-$VN_RUN_ID')")" \
	"cancelled,cancelled" "... both stay cancelled"

# ---- two notifiers: every reminder fires once -------------------------------------------
vn_start_vestnik "$VN_TMP/notifier4.log" notifier
vn_wait_for 200 GET /readyz 20 || vn_fail "the second notifier is not ready"
te=$(($(now_ms) + 2500))
for i in $(seq 1 30); do
	schedule "m$i-$VN_RUN_ID" "many $i/$VN_RUN_ID." "$te"
done
deadline=$((SECONDS + 15))
while (($(fired_count "/$VN_RUN_ID.") < 30 && SECONDS < deadline)); do sleep 0.2; done
sleep 1.5 # a second firing would show by now (leases, both schedulers polling)
vn_assert_eq "$(fired_count "/$VN_RUN_ID.")" 30 "two notifiers: 30 reminders, 30 messages"
for i in 1 15 30; do
	vn_assert_eq "$(fired_count "many $i/$VN_RUN_ID.")" 1 "... reminder $i exactly once"
done
owners="$(cat "$VN_TMP/notifier3.log" "$VN_TMP/notifier4.log" | grep -c '"consuming' || true)"
vn_assert_eq "$owners" 2 "... with both notifiers running"
vn_done
