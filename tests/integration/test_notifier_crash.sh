#!/usr/bin/env bash
# kill -9 of the notifier in the middle of 1,000 events: after a restart every
# event is delivered, and nothing the delivery log had recorded as sent is
# sent again.
#
# What a crash can and cannot leave behind (docs/notifier.md): a message that
# was in flight to the Bot API when the process died may or may not have
# reached Telegram, and the Bot API has no idempotency key to ask. Such a row
# is claimed but not final; when its claim runs out it is sent again (at least
# once). So the test asserts: no event lost; every event the log marked sent
# before the kill went out exactly once; a repeat only ever for a row whose
# send was in flight at the kill (its attempts > 1); and it prints how many.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/bot_lib.sh
. "$(dirname "$0")/bot_lib.sh"
# shellcheck source=tests/integration/ntf_lib.sh
. "$(dirname "$0")/ntf_lib.sh"

N=1000
vn_load_env
trap vn_ntf_cleanup EXIT
vn_ntf_db
vn_start_fake
vn_ntf_env
export NOTIFY_CLAIM_LEASE=2s
vn_start_vestnik "$VN_TMP/notifier1.log" notifier
vn_wait_for 200 GET /readyz 20 || vn_fail "the notifier is not ready: $VN_BODY"

u="crash-$VN_RUN_ID" tg=$((500000 + RANDOM))
vn_api PUT "/v1/users/$u" "{\"telegram\":{\"telegram_user_id\":$tg},\"preferences\":{\"channels\":{\"*\":[\"telegram\"]}}}"
vn_assert_eq "$VN_STATUS" 201 "a user with a Telegram link"

# Each send takes 5-15 ms at the fake, so 1,000 events take a moment and the
# kill lands in the middle of the work.
vn_fake POST /_fake/faults '{"method":"sendMessage","kind":"latency","latency_ms":10,"count":-1}'
vn_assert_eq "$VN_STATUS" 200 "the fake Bot API answers slowly (10 ms)"

for i in $(seq 1 $N); do
	printf '{"type":"notification.requested","source":"crash-test","recipients":[{"user_id":"%s"}],"data":{"title":"event %d of %s"}}\n' \
		"$u" "$i" "$VN_RUN_ID"
done >"$VN_TMP/events.ndjson"
vn_send --file "$VN_TMP/events.ndjson" >"$VN_TMP/ids" || vn_fail "publishing failed: $(cat "$VN_TMP/send.log")"
vn_assert_eq "$(wc -l <"$VN_TMP/ids")" $N "$N events published and confirmed"

sent_count() { vn_fake_count sendMessage "$tg"; }
deadline=$((SECONDS + 30))
while (($(sent_count) < N / 4 && SECONDS < deadline)); do sleep 0.05; done
kill -KILL "$VN_PID"
wait "$VN_PID" 2>/dev/null || true
vn__forget "$VN_PID"
at_kill="$(sent_count)"
((at_kill > 0 && at_kill < N)) || vn_fail "the kill did not land in the middle ($at_kill of $N sent)"
vn_ok "kill -9 after $at_kill of $N messages"
ids_sql="'$(paste -sd, "$VN_TMP/ids" | sed "s/,/','/g")'"
sent_before="$(vn_sql "SELECT count(*) FROM notify.deliveries WHERE event_id IN ($ids_sql) AND state = 'sent'")"
claimed="$(vn_sql "SELECT count(*) FROM notify.deliveries WHERE event_id IN ($ids_sql) AND claim_owner IS NOT NULL")"
vn_sql "SELECT event_id FROM notify.deliveries WHERE event_id IN ($ids_sql) AND state = 'sent'" | sort >"$VN_TMP/sent_before"
vn_ok "at the kill the log had $sent_before sent and $claimed claimed in flight"

vn_start_vestnik "$VN_TMP/notifier2.log" notifier
deadline=$((SECONDS + 90))
while :; do
	final="$(vn_sql "SELECT count(*) FROM notify.deliveries WHERE event_id IN ($ids_sql) AND state = 'sent'")"
	((final >= N || SECONDS >= deadline)) && break
	sleep 0.2
done
vn_assert_eq "$final" $N "after a restart every event has a sent row"
vn_assert_eq "$(vn_sql "SELECT count(*) FROM notify.deliveries WHERE event_id IN ($ids_sql)")" $N \
	"... one row per event (a redelivered message found its row)"

# Count what the user received, per event.
vn_fake GET "/_fake/calls?method=sendMessage"
/usr/bin/python3 -c '
import json, re, sys
calls = json.loads(sys.stdin.read())["calls"]
per = {}
for c in calls:
    if str(c["params"].get("chat_id")) != sys.argv[1] or c.get("status") != 200:
        continue
    m = re.search(r"event (\d+) of " + sys.argv[2], c["params"].get("text", ""))
    if m:
        per[int(m.group(1))] = per.get(int(m.group(1)), 0) + 1
print(json.dumps(per))' "$tg" "$VN_RUN_ID" <<<"$VN_BODY" >"$VN_TMP/per_event"
missing="$(vjs() { /usr/bin/python3 -c "import json,sys; p=json.load(open(sys.argv[1])); $1" "$VN_TMP/per_event"; }
	vjs "print(sum(1 for i in range(1, $N + 1) if str(i) not in p))")"
vn_assert_eq "$missing" 0 "no event is lost: all $N reached the user"
# Which events went out more than once, by id (ids are in publish order).
/usr/bin/python3 -c '
import json, sys
p = json.load(open(sys.argv[1]))
ids = [l.strip() for l in open(sys.argv[2])]
for i, n in p.items():
    if n > 1:
        print(ids[int(i) - 1])' "$VN_TMP/per_event" "$VN_TMP/ids" | sort >"$VN_TMP/dups"
dups="$(wc -l <"$VN_TMP/dups")"
vn_assert_eq "$(comm -12 "$VN_TMP/dups" "$VN_TMP/sent_before" | wc -l)" 0 \
	"nothing the log had recorded as sent before the kill was sent again"
if ((dups > 0)); then
	dup_sql="'$(paste -sd, "$VN_TMP/dups" | sed "s/,/','/g")'"
	vn_assert_eq "$(vn_sql "SELECT count(*) FROM notify.deliveries WHERE event_id IN ($dup_sql) AND attempts < 2")" 0 \
		"every repeat is a row whose send was in flight at the kill (attempts 2)"
fi
((dups <= claimed)) || vn_fail "$dups repeats but only $claimed rows were in flight at the kill"
vn_ok "$dups of $N sent twice, all of them in flight at the kill (at most the $claimed claimed rows)"
vn_done
