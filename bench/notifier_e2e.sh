#!/usr/bin/env bash
# bench/notifier_e2e.sh — the notifier end to end: RabbitMQ -> `vestnik
# notifier` -> Telegram (the fake Bot API) or e-mail (the services' maildev),
# with the delivery log in PostgreSQL; against a bare AMQP consumer as the
# ceiling. One run does:
#
# 1. Ceiling: build/bench/amqp_ceiling with a quorum queue, messages of the
#    size of our envelopes, the notifier's prefetch: consumed msg/s.
# 2. Telegram at full rate: the fake (limiter off), one notifier on a bench
#    exchange and queue prefix, one registered recipient; BENCH_COUNT
#    notification.requested events published at once with `vestnik send
#    --count`; waits until every delivery row is final (sent, failed or
#    skipped) and reports events/s from the first publish to the last row
#    final. `vestnik send --count` stamps every copy with one occurred_at (the
#    time the command started), so per-event latency at full rate is taken
#    inside the notifier: events.received_at (the statement that stores the
#    batch) -> deliveries.updated_at (the statement that records the outcome).
#    With a burst of BENCH_COUNT, publish -> final is mostly time in the queue.
# 3. Telegram at half that rate: build/bench/paced_publish sends events at a
#    steady rate for BENCH_HALF_SECONDS, each stamped with occurred_at = the
#    moment it is published; latency = deliveries.updated_at - occurred_at,
#    p50 / p99 / max over those events only.
# 4. E-mail at full rate: BENCH_EMAIL_COUNT events with channels [email] to
#    maildev (SMTP), events/s end to end.
# 5. A summary, and the targets (over 10,000 events/s; p99 under 100 ms at
#    half that rate) marked met or not met.
#
# Timestamps in the latency figures are PostgreSQL's now() of the statement
# that wrote them (transaction start), on this machine's clock. updated_at is
# set when the outcome statement starts, so the last step (that statement and
# the AMQP ack) is not in the figures.
#
# CPU: utime+stime of the notifier, the fake, RabbitMQ (beam.smp) and every
# postgres process are read from /proc before and after each run and printed
# as % of one core, with the machine's total, to show where the time goes.
#
# Isolation: the bench uses its own exchange (BENCH_EXCHANGE, vestnik-bench)
# and queue prefix (BENCH_PREFIX, vestnik-bench.notifier), declared fresh
# (deleted first) and deleted at the end with the management API
# (RABBITMQ_MGMT_URL); the ceiling's queue is vestnik.bench.ceiling (the tool
# deletes it). PostgreSQL: by default a scratch database vestnik_bench_<pid>
# on the services' server, migrated with `vestnik migrate` and dropped at the
# end, because the notifier's scheduler claims any waiting delivery or due
# reminder in its database (tests sharing the dev database create such rows
# all the time, and a test notifier would as well take the bench's).
# BENCH_DATABASE=dev uses DATABASE_URL itself: the bench then refuses to start
# while that database has waiting work of its own (BENCH_FORCE=1 runs anyway),
# and deletes its events (source "vestnik-bench", with their deliveries) and
# its user vestnik-bench-1 at the end. The bench's mails in maildev are
# deleted too. If a service restarts during a run (other tests restart them),
# or the notifier loses a connection, the run's figures are marked not valid.
#
# Needs: `make build` (build/vestnik, build/vestnik-fake-telegram,
# build/bench/amqp_ceiling, build/bench/paced_publish), `make services-up`,
# psql, curl, python3.
#
# Env: VESTNIK_BIN (build/vestnik), BENCH_COUNT (20000), BENCH_EMAIL_COUNT
# (5000), BENCH_PREFETCH (300), BENCH_BATCH (256), BENCH_HALF_SECONDS (10),
# BENCH_HALF_RATE (default: half the measured Telegram events/s),
# BENCH_CEILING_COUNT (BENCH_COUNT), BENCH_TIMEOUT (60: seconds without
# progress before giving up), BENCH_EXCHANGE, BENCH_PREFIX, BENCH_PORT
# (18190, the next free one is taken), BENCH_SKIP (comma list of ceiling,
# telegram, half, email), BENCH_KEEP (a directory: logs are copied there),
# BENCH_DATABASE (scratch or dev), BENCH_FORCE.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="${VESTNIK_BIN:-$repo/build/vestnik}"
bdir="$(dirname "$bin")"
fake="${FAKE_TELEGRAM_BIN:-$bdir/vestnik-fake-telegram}"
ceiling="$bdir/bench/amqp_ceiling"
pacer="$bdir/bench/paced_publish"
envfile="${VESTNIK_STATE_DIR:-$repo/.services}/env"
count="${BENCH_COUNT:-20000}"
email_count="${BENCH_EMAIL_COUNT:-5000}"
prefetch="${BENCH_PREFETCH:-300}"
batch="${BENCH_BATCH:-256}"
half_secs="${BENCH_HALF_SECONDS:-10}"
ceiling_count="${BENCH_CEILING_COUNT:-$count}"
stall="${BENCH_TIMEOUT:-60}"
exchange="${BENCH_EXCHANGE:-vestnik-bench}"
prefix="${BENCH_PREFIX:-vestnik-bench.notifier}"
skip=",${BENCH_SKIP:-},"
source_tag="vestnik-bench"
user="vestnik-bench-1"
user_email="vestnik-bench-1@example.com"
tg_chat=900100900
api_key="vestnik-bench-$$"
final_states="('sent','failed','skipped')"

die() {
	echo "bench: $*" >&2
	exit 1
}
say() { echo "== $*"; }
info() { echo "   $*"; }
skipped() { [[ "$skip" == *",$1,"* ]]; }

# ---- prerequisites ----------------------------------------------------------------
for f in "$bin" "$fake" "$ceiling" "$pacer"; do
	[[ -x "$f" ]] || die "$f not built; run 'make build'"
done
for tool in psql curl python3; do
	command -v "$tool" >/dev/null || die "$tool is missing; run scripts/deps"
done
for v in count email_count prefetch batch half_secs ceiling_count stall; do
	[[ "${!v}" =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer, not '${!v}'"
done
[[ -r "$envfile" ]] || die "$envfile missing; run 'make services-up'"
set -a
# shellcheck disable=SC1090
. "$envfile"
set +a
for v in AMQP_URL DATABASE_URL REDIS_URL RABBITMQ_MGMT_URL; do
	[[ -n "${!v:-}" ]] || die "$v is not set in $envfile"
done
[[ "$AMQP_URL" =~ ^amqp://[^/]+(/(.*))?$ ]] || die "AMQP_URL $AMQP_URL: expected amqp://user:pass@host:port/vhost"
vhost="${BASH_REMATCH[2]:-}"
[[ -n "$vhost" ]] || vhost="/"
vhost_enc="$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(urllib.parse.unquote(sys.argv[1]), safe=""))' "$vhost")"
mgmt="${RABBITMQ_MGMT_URL%/}"

psqlq() { psql "$DATABASE_URL" -X -q -A -t -v ON_ERROR_STOP=1 -c "$1"; }
psqlq 'SELECT 1' >/dev/null 2>&1 || die "PostgreSQL at DATABASE_URL does not answer; run 'make services-up'"
curl -fs -o /dev/null -m 5 "$mgmt/api/overview" || die "the RabbitMQ management API ($mgmt) does not answer"

# A scratch database by default: the notifier's scheduler claims any waiting
# delivery or due reminder in its database, and tests sharing the services'
# database create such rows all the time. BENCH_DATABASE=dev uses DATABASE_URL
# itself (the bench's rows are deleted at the end).
dev_url="$DATABASE_URL"
scratch_db=""
if [[ "${BENCH_DATABASE:-scratch}" != dev ]]; then
	scratch_db="vestnik_bench_$$"
	if psqlq "CREATE DATABASE $scratch_db" >/dev/null 2>"${TMPDIR:-/tmp}/vn-ntfbench-createdb.$$"; then
		DATABASE_URL="$(python3 -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/" + sys.argv[2])))' "$dev_url" "$scratch_db")"
		export DATABASE_URL
	else
		echo "bench: cannot create a scratch database ($(cat "${TMPDIR:-/tmp}/vn-ntfbench-createdb.$$")); using DATABASE_URL" >&2
		scratch_db=""
	fi
	rm -f "${TMPDIR:-/tmp}/vn-ntfbench-createdb.$$"
fi
drop_scratch() {
	[[ -n "$scratch_db" ]] || return 0
	psql "$dev_url" -X -q -v ON_ERROR_STOP=1 -c "DROP DATABASE IF EXISTS $scratch_db WITH (FORCE)" >/dev/null
}

cd "$repo" # the notifier finds templates/default and db/migrations from here
"$bin" migrate >/dev/null 2>&1 || { drop_scratch; die "vestnik migrate failed: $("$bin" migrate 2>&1 | tail -3)"; }

if [[ -z "$scratch_db" && -z "${BENCH_FORCE:-}" ]]; then
	foreign="$(psqlq "SELECT (SELECT count(*) FROM notify.deliveries d JOIN notify.events e ON e.id = d.event_id
		WHERE d.state IN ('pending','retrying') AND e.source <> '$source_tag')
		+ (SELECT count(*) FROM notify.reminders WHERE state IN ('scheduled','firing'))")"
	((foreign == 0)) || die "BENCH_DATABASE=dev: the database has $foreign waiting deliveries or reminders of its own;" \
		"the bench notifier's scheduler would take them (BENCH_FORCE=1 runs anyway)"
fi

# ---- processes and cleanup --------------------------------------------------------
work="$(mktemp -d "${TMPDIR:-/tmp}/vn-ntfbench.XXXXXX")"
fake_pid=""
ntf_pid=""
bg_pid=""

# stop_pid PID: SIGTERM, up to 15 s (SHUTDOWN_TIMEOUT is 10 s), then SIGKILL.
stop_pid() {
	local pid="$1"
	[[ -n "$pid" ]] || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for _ in $(seq 1 150); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

# mq_delete: the bench exchange and every queue named PREFIX.* (retry and dead
# queues included). Prints how many queues went.
mq_delete() {
	local q n=0
	while IFS= read -r q; do
		[[ -n "$q" ]] || continue
		curl -fs -o /dev/null -X DELETE "$mgmt/api/queues/$vhost_enc/$(python3 -c \
			'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$q")" && n=$((n + 1))
	done < <(curl -fs "$mgmt/api/queues/$vhost_enc?columns=name" | python3 -c '
import json, sys
p = sys.argv[1] + "."
for q in json.load(sys.stdin):
    if q["name"].startswith(p):
        print(q["name"])' "$prefix")
	curl -fs -o /dev/null -X DELETE "$mgmt/api/exchanges/$vhost_enc/$exchange" || true
	echo "$n"
}

# mail_delete: the mails maildev holds for the bench's address; prints the count.
mail_delete() {
	[[ -n "${MAIL_API_URL:-}" ]] || { echo 0; return 0; }
	python3 - "$MAIL_API_URL" "$user_email" <<'PY'
import http.client, json, sys, urllib.parse
u = urllib.parse.urlsplit(sys.argv[1])
c = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=30)
c.request("GET", "/email")
mails = json.loads(c.getresponse().read() or b"[]")
n = 0
for m in mails:
    if any(t.get("address") == sys.argv[2] for t in m.get("to", [])):
        c.request("DELETE", "/email/" + urllib.parse.quote(m["id"]))
        c.getresponse().read()
        n += 1
print(n)
PY
}

db_delete() {
	psqlq "DELETE FROM notify.events WHERE source = '$source_tag'" >/dev/null
	psqlq "DELETE FROM bot.users WHERE id = '$user'" >/dev/null
}

cleanup() {
	local code=$? n
	trap - EXIT INT TERM
	[[ -z "$bg_pid" ]] || { kill -TERM "$bg_pid" 2>/dev/null; wait "$bg_pid" 2>/dev/null; } || true
	stop_pid "$ntf_pid"
	stop_pid "$fake_pid"
	echo "== cleanup"
	if n="$(mq_delete 2>/dev/null)"; then
		info "RabbitMQ: deleted exchange $exchange and $n queues $prefix.*"
	else
		info "RabbitMQ: could not delete $exchange / $prefix.* (management API down?)"
	fi
	if [[ -n "$scratch_db" ]]; then
		if drop_scratch 2>/dev/null; then
			info "PostgreSQL: dropped the scratch database $scratch_db"
		else
			info "PostgreSQL: could not drop the scratch database $scratch_db; drop it by hand"
		fi
	elif db_delete 2>/dev/null; then
		info "PostgreSQL: deleted events with source $source_tag (and their deliveries), user $user"
	else
		info "PostgreSQL: could not delete the bench rows (source $source_tag, user $user)"
	fi
	if n="$(mail_delete 2>/dev/null)"; then info "maildev: deleted $n mails to $user_email"; fi
	if [[ -n "${BENCH_KEEP:-}" ]]; then
		mkdir -p "$BENCH_KEEP" && cp -r "$work"/. "$BENCH_KEEP"/ && info "logs kept in $BENCH_KEEP"
	fi
	rm -rf "$work"
	exit "$code"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
	local port="$1"
	while [[ -n "$(ss -Hltn "( sport = :$port )" 2>/dev/null)" ]]; do
		port=$((port + 1))
	done
	echo "$port"
}

now_ms() { date +%s%3N; }

# ---- CPU accounting ------------------------------------------------------------------
hz="$(getconf CLK_TCK)"
ticks_of() { # PID...: summed utime+stime
	local p t=0 v
	for p in "$@"; do
		v=$(awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null) || continue
		t=$((t + v))
	done
	echo "$t"
}
pids_named() { # COMM: pids whose /proc/PID/comm is COMM (read only)
	local d
	for d in /proc/[0-9]*; do
		[[ "$(cat "$d/comm" 2>/dev/null)" == "$1" ]] && echo "${d#/proc/}"
	done
	return 0
}
# cpu_snap FILE: ticks per group plus the machine's busy and total ticks.
cpu_snap() {
	local -a pg beam
	mapfile -t pg < <(pids_named postgres)
	mapfile -t beam < <(pids_named beam.smp)
	{
		echo "notifier $(ticks_of "$ntf_pid")"
		echo "fake $(ticks_of "$fake_pid")"
		echo "rabbitmq $(ticks_of "${beam[@]}")"
		echo "postgres $(ticks_of "${pg[@]}")"
		echo "pg_backend $(ticks_of "${pg_backends[@]}")"
		awk '/^cpu / { busy = $2 + $3 + $4 + $7 + $8; print "machine_busy " busy; print "machine_all " busy + $5 + $6 }' /proc/stat
	} >"$1"
}
# cpu_report BEFORE AFTER SECONDS: % of one core per group.
cpu_report() {
	python3 - "$1" "$2" "$3" "$hz" "$(nproc)" <<'PY'
import sys
a = dict(l.split() for l in open(sys.argv[1]))
b = dict(l.split() for l in open(sys.argv[2]))
secs, hz, ncpu = float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
d = {k: (int(b[k]) - int(a[k])) for k in a}
names = {"notifier": "notifier", "fake": "fake", "rabbitmq": "rabbitmq", "postgres": "postgres (all)",
         "pg_backend": "of which the notifier's backends"}
parts = ["%s %.0f%%" % (names[k], 100.0 * d[k] / hz / secs) for k in names]
busy = 100.0 * d["machine_busy"] / max(d["machine_all"], 1)
print("   CPU (%% of one core): %s; machine %.0f%% busy of %d cores" % (", ".join(parts), busy, ncpu))
PY
}

# ---- the envelopes ----------------------------------------------------------------------
# One envelope as `vestnik send --file` sends it (id and occurred_at filled in),
# and as a template for paced_publish (@ID@, @TS@ filled in per message).
envelope() { # CHANNEL TITLE
	printf '{"type":"notification.requested","version":1,"source":"%s","recipients":[{"user_id":"%s"}],"channels":["%s"],"data":{"title":"%s"}' \
		"$source_tag" "$user" "$1" "$2"
}
envelope "telegram" "bench" >"$work/tg.json"
echo '}' >>"$work/tg.json"
envelope "email" "bench" >"$work/email.json"
echo '}' >>"$work/email.json"
{
	envelope "telegram" "bench"
	echo ',"id":"@ID@","occurred_at":"@TS@"}'
} >"$work/tg.tpl"
# size on the wire: the template with a 36-character id and a 24-character time
msg_size=$(($(tr -d '\n' <"$work/tg.tpl" | wc -c) - 4 + 36 - 4 + 24))

declare -A R # results

# ---- 1. the ceiling --------------------------------------------------------------------------
if ! skipped ceiling; then
	say "ceiling: amqp_ceiling, quorum queue, $ceiling_count messages of $msg_size B, prefetch $prefetch"
	"$ceiling" --quorum --count "$ceiling_count" --size "$msg_size" --prefetch "$prefetch" \
		>"$work/ceiling.out" 2>&1 </dev/null || { cat "$work/ceiling.out" >&2; die "amqp_ceiling failed"; }
	grep '^ceiling:' "$work/ceiling.out" | sed 's/^/   /'
	R[ceiling]="$(sed -n 's/^RESULT consume_per_s=\([0-9]*\).*/\1/p' "$work/ceiling.out")"
	[[ -n "${R[ceiling]}" ]] || die "no RESULT line from amqp_ceiling"
fi

if skipped telegram && skipped half && skipped email; then
	exit 0
fi

# ---- the notifier -------------------------------------------------------------------------------
say "setup: fake Bot API, notifier (exchange $exchange, queues $prefix.*, prefetch $prefetch, batch $batch)"
n="$(mq_delete)"
((n == 0)) || info "deleted $n queues left by an earlier run"
db_delete

"$fake" --host 127.0.0.1 --port 0 --log-level warn --max-calls 1000 \
	>"$work/fake.out" 2>"$work/fake.log" </dev/null &
fake_pid=$!
port=""
for _ in $(seq 1 50); do
	port=$(sed -n 's/.*"listening":\([0-9]*\).*/\1/p' "$work/fake.out" | head -1)
	[[ -n "$port" ]] && break
	sleep 0.1
done
[[ -n "$port" ]] || die "the fake did not start: $(cat "$work/fake.log")"
fake_api="http://127.0.0.1:$port"

http_port="$(free_port "${BENCH_PORT:-18190}")"
AMQP_EXCHANGE="$exchange" NOTIFY_QUEUE_PREFIX="$prefix" AMQP_PREFETCH="$prefetch" \
	NOTIFY_BATCH="$batch" TELEGRAM_API_URL="$fake_api" TELEGRAM_BOT_TOKEN="123456:bench" \
	TELEGRAM_RATE_LIMIT=off HTTP_PORT="$http_port" API_KEY="$api_key" LOG_LEVEL="${BENCH_LOG_LEVEL:-warn}" \
	SMTP_HOST="${SMTP_HOST:-127.0.0.1}" SMTP_PORT="${SMTP_PORT:-1025}" \
	"$bin" notifier >"$work/notifier.out" 2>"$work/notifier.log" </dev/null &
ntf_pid=$!
api="http://127.0.0.1:$http_port"
# ready: /readyz 200 and the work queue declared
ready=""
for _ in $(seq 1 150); do
	kill -0 "$ntf_pid" 2>/dev/null || { tail -n 20 "$work/notifier.log" >&2; die "the notifier exited"; }
	if curl -fs -o /dev/null -m 2 "$api/readyz" &&
		curl -fs -o /dev/null -m 2 "$mgmt/api/queues/$vhost_enc/$prefix.notifications"; then
		ready=1
		break
	fi
	sleep 0.1
done
[[ -n "$ready" ]] || { tail -n 20 "$work/notifier.log" >&2; die "the notifier was not ready within 15 s"; }

code=$(curl -s -o "$work/put.out" -w '%{http_code}' -X PUT -H "Authorization: Bearer $api_key" \
	-H 'Content-Type: application/json' "$api/v1/users/$user" \
	-d '{"email":"'"$user_email"'","telegram":{"telegram_user_id":'"$tg_chat"',"chat_id":'"$tg_chat"'},"preferences":{"channels":{"*":["telegram"]}}}')
[[ "$code" == 2* ]] || die "PUT /v1/users/$user: $code $(cat "$work/put.out")"
# the notifier's PostgreSQL backends (for the CPU figures): its client ports
pg_backends=()
mapfile -t pg_backends < <(psqlq "SELECT pid FROM pg_stat_activity WHERE client_port = ANY ('{$(
	ss -Htnp 2>/dev/null | awk -v p="pid=$ntf_pid," 'index($0, p) { n = split($4, a, ":"); print a[n] }' |
		paste -sd, -)}'::int[])")
info "fake on :$port, notifier pid $ntf_pid on :$http_port (${#pg_backends[@]} PostgreSQL backends)," \
	"user $user registered"

# final_count CHANNEL SINCE_MS: final rows and all rows of the bench's events for CHANNEL
# created since SINCE_MS (other users of the database may write rows meanwhile).
final_count() {
	psqlq "SELECT count(*) FILTER (WHERE d.state IN $final_states), count(*) FROM notify.deliveries d
		JOIN notify.events e ON e.id = d.event_id WHERE d.channel = '$1'
		AND d.created_at >= to_timestamp($2 / 1000.0) AND e.source = '$source_tag'" | tr '|' ' '
}

# wait_final CHANNEL SINCE_MS N LABEL: progress every second until N rows are final.
wait_final() {
	local ch="$1" since="$2" want="$3" label="$4" fin=0 all=0 last=-1 still=0 t0 t prev=0
	t0=$(now_ms)
	while :; do
		read -r fin all < <(final_count "$ch" "$since")
		t=$(now_ms)
		printf '   %-9s t=%5.1fs  rows %6d  final %6d / %d  (+%d/s)\n' "$label" \
			"$(awk -v a="$t" -v b="$t0" 'BEGIN { print (a - b) / 1000 }')" "$all" "$fin" "$want" $((fin - prev))
		prev=$fin
		((fin >= want)) && return 0
		kill -0 "$ntf_pid" 2>/dev/null || { tail -n 20 "$work/notifier.log" >&2; die "the notifier exited"; }
		if [[ -n "$bg_pid" ]] && ! kill -0 "$bg_pid" 2>/dev/null; then
			wait "$bg_pid" || { cat "$work/$label".*.err "$work/$label".*.out 2>/dev/null >&2; die "the publisher failed"; }
			bg_pid=""
		fi
		if ((fin == last)); then
			still=$((still + 1))
			((still < stall)) || die "no progress for $stall s ($fin of $want final)"
		else
			still=0
		fi
		last=$fin
		sleep 1
	done
}

# states CHANNEL SINCE_MS: "sent=N failed=N ..." of the run
states() {
	psqlq "SELECT string_agg(state || '=' || n, ' ') FROM (SELECT d.state, count(*) n FROM notify.deliveries d
		JOIN notify.events e ON e.id = d.event_id WHERE d.channel = '$1'
		AND d.created_at >= to_timestamp($2 / 1000.0) AND e.source = '$source_tag' GROUP BY 1 ORDER BY 1) s"
}

# full_run CHANNEL N FILE KEY: publish N with vestnik send --count, wait, figures into R.
full_run() {
	local ch="$1" n="$2" file="$3" key="$4" since t1 c0="$work/$4.cpu0" c1="$work/$4.cpu1" mark svc
	mark=$(log_mark)
	svc=$(services_id)
	local b0
	b0=$(batches)
	since=$(now_ms)
	cpu_snap "$c0"
	local ts
	ts=$(now_ms)
	AMQP_EXCHANGE="$exchange" LOG_LEVEL=warn "$bin" send --file "$file" --count "$n" \
		>"$work/$key.send.out" 2>"$work/$key.send.err" </dev/null &
	bg_pid=$!
	wait_final "$ch" "$since" "$n" "$key"
	t1=$(now_ms)
	if [[ -n "$bg_pid" ]]; then
		wait "$bg_pid" || { cat "$work/$key.send.err" >&2; die "vestnik send failed"; }
		bg_pid=""
	fi
	cpu_snap "$c1"
	info "vestnik send: $(grep -h 'published' "$work/$key.send.err" || echo '?')"
	# first publish = the events' occurred_at (vestnik send stamps every copy
	# with its start time); last final = max(updated_at)
	local row
	row="$(psqlq "SELECT count(*), extract(epoch FROM max(d.updated_at) - min(e.occurred_at)),
		extract(epoch FROM max(d.updated_at) - min(d.created_at)),
		percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM d.updated_at - e.received_at) * 1000),
		percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM d.updated_at - e.received_at) * 1000),
		max(extract(epoch FROM d.updated_at - e.received_at) * 1000)
		FROM notify.deliveries d JOIN notify.events e ON e.id = d.event_id
		WHERE d.channel = '$ch' AND d.created_at >= to_timestamp($since / 1000.0)
		AND e.source = '$source_tag'")"
	local cnt secs secs_db p50 p99 pmax
	IFS='|' read -r cnt secs secs_db p50 p99 pmax <<<"$row"
	R[${key}_rate]="$(awk -v n="$cnt" -v s="$secs" 'BEGIN { printf "%.0f", n / s }')"
	R[${key}_p50]="$(printf '%.1f' "$p50")"
	R[${key}_p99]="$(printf '%.1f' "$p99")"
	info "$cnt events, $(states "$ch" "$since")"
	info "first publish -> last row final: $(printf '%.2f' "$secs") s = ${R[${key}_rate]} events/s" \
		"(first row inserted -> last final: $(printf '%.2f' "$secs_db") s)"
	info "in the notifier (events.received_at -> deliveries.updated_at): p50 ${R[${key}_p50]} ms," \
		"p99 ${R[${key}_p99]} ms, max $(printf '%.1f' "$pmax") ms"
	cpu_report "$c0" "$c1" "$(awk -v a="$t1" -v b="$ts" 'BEGIN { print (a - b) / 1000 }')"
	local nb=$(($(batches) - b0))
	info "batches: $nb, $(awk -v n="$cnt" -v b="$nb" 'BEGIN { printf "%.1f", b ? n / b : 0 }') events per batch on average"
	check_run "$key" "$mark" "$svc"
}

# services_id: PostgreSQL's start time and RabbitMQ's pid (a restart changes them).
services_id() {
	echo "$(psqlq 'SELECT pg_postmaster_start_time()' 2>/dev/null)/$(pids_named beam.smp | tr '\n' ' ')"
}
# check_run NAME LOGLINE0 SVC0: warn when a service restarted or the notifier
# lost a connection during the run (shared services: other tests may restart them).
check_run() {
	local lost
	lost=$(tail -n +"$2" "$work/notifier.log" | grep -c 'connection lost\|connection closed\|connect failed' || true)
	if [[ "$(services_id)" != "$3" || "$lost" -gt 0 ]]; then
		info "WARNING: a service restarted or the notifier lost a connection during the $1 run" \
			"($lost log lines); these figures are not valid"
		R[${1}_invalid]=1
	fi
}
# batches: how many batches the notifier has settled (its /metrics).
batches() {
	curl -fs -m 5 "$api/metrics" | awk '/^vestnik_notifier_batch_seconds_count/ { n += $NF } END { printf "%d", n }'
}
log_mark() { echo $(($(wc -l <"$work/notifier.log") + 1)); }

# ---- 2. Telegram, full rate ------------------------------------------------------------------------
if ! skipped telegram; then
	say "telegram: $count notification.requested events at once (vestnik send --count), channel telegram"
	full_run telegram "$count" "$work/tg.json" tg
	info "fake Bot API: $(curl -s "$fake_api/_fake/stats" | python3 -c '
import json, sys
s = json.load(sys.stdin)
print("messages_sent=%s sendMessage calls=%s" % (s.get("messages_sent"), s.get("calls", {}).get("sendMessage")))')"
fi

# ---- 3. Telegram, half rate: latency ----------------------------------------------------------------
if ! skipped half; then
	half_rate="${BENCH_HALF_RATE:-}"
	if [[ -z "$half_rate" ]]; then
		[[ -n "${R[tg_rate]:-}" ]] || die "BENCH_HALF_RATE is needed when the telegram run is skipped"
		half_rate=$((R[tg_rate] / 2))
	fi
	((half_rate >= 1)) || half_rate=1
	half_n=$((half_rate * half_secs))
	R[half_rate]="$half_rate"
	say "latency: $half_n events at a steady $half_rate/s for ${half_secs} s (paced_publish, occurred_at per event)"
	mark=$(log_mark)
	svc=$(services_id)
	b0=$(batches)
	since=$(now_ms)
	cpu_snap "$work/half.cpu0"
	ts=$(now_ms)
	"$pacer" --exchange "$exchange" --routing-key notification.requested --template "$work/tg.tpl" \
		--rate "$half_rate" --count "$half_n" >"$work/half.pub.out" 2>"$work/half.pub.err" </dev/null &
	bg_pid=$!
	wait_final telegram "$since" "$half_n" half
	if [[ -n "$bg_pid" ]]; then
		wait "$bg_pid" || { cat "$work/half.pub.err" >&2; die "paced_publish failed"; }
		bg_pid=""
	fi
	t1=$(now_ms)
	cpu_snap "$work/half.cpu1"
	info "paced_publish: $(sed -n 's/^RESULT //p' "$work/half.pub.out")"
	row="$(psqlq "SELECT count(*),
		percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM d.updated_at - e.occurred_at) * 1000),
		percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM d.updated_at - e.occurred_at) * 1000),
		max(extract(epoch FROM d.updated_at - e.occurred_at) * 1000),
		percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM e.received_at - e.occurred_at) * 1000)
		FROM notify.deliveries d JOIN notify.events e ON e.id = d.event_id
		WHERE d.channel = 'telegram' AND d.created_at >= to_timestamp($since / 1000.0)
		AND e.source = '$source_tag'")"
	IFS='|' read -r cnt p50 p99 pmax q99 <<<"$row"
	R[half_p50]="$(printf '%.1f' "$p50")"
	R[half_p99]="$(printf '%.1f' "$p99")"
	info "$cnt events, $(states telegram "$since")"
	info "publish -> row final: p50 ${R[half_p50]} ms, p99 ${R[half_p99]} ms, max $(printf '%.1f' "$pmax") ms" \
		"(publish -> event stored: p99 $(printf '%.1f' "$q99") ms)"
	cpu_report "$work/half.cpu0" "$work/half.cpu1" "$(awk -v a="$t1" -v b="$ts" 'BEGIN { print (a - b) / 1000 }')"
	nb=$(($(batches) - b0))
	info "batches: $nb, $(awk -v n="$cnt" -v b="$nb" 'BEGIN { printf "%.1f", b ? n / b : 0 }') events per batch on average"
	check_run half "$mark" "$svc"
fi

# ---- 4. e-mail, full rate --------------------------------------------------------------------------
if ! skipped email; then
	say "email: $email_count events at once, channel email, SMTP to maildev at ${SMTP_HOST:-127.0.0.1}:${SMTP_PORT:-1025}"
	full_run email "$email_count" "$work/email.json" email
fi

# ---- 5. summary ------------------------------------------------------------------------------------------
say "summary ($(nproc) cores; prefetch $prefetch, batch $batch)"
v() { echo "${R[$1]:--}"; }
ratio="-"
if [[ -n "${R[tg_rate]:-}" && -n "${R[ceiling]:-}" ]]; then
	ratio="$(awk -v a="${R[tg_rate]}" -v b="${R[ceiling]}" 'BEGIN { printf "%.2f", a / b }')"
fi
printf '   %-52s %12s\n' \
	"AMQP ceiling, bare consumer (msg/s)" "$(v ceiling)" \
	"telegram, end to end (events/s)" "$(v tg_rate)" \
	"ratio telegram / ceiling" "$ratio" \
	"p99 at full rate, inside the notifier (ms)" "$(v tg_p99)" \
	"p99 at half rate ($(v half_rate)/s), publish -> final (ms)" "$(v half_p99)" \
	"email, end to end (events/s, $email_count events)" "$(v email_rate)"
verdict() { if [[ "$1" == - ]]; then echo "not measured"; elif (($2)); then echo met; else echo "NOT met"; fi; }
t_rate="$(v tg_rate)"
t_p99="$(v half_p99)"
rate_ok=0
p99_ok=0
[[ "$t_rate" == - ]] || rate_ok=$((t_rate > 10000))
[[ "$t_p99" == - ]] || p99_ok=$(awk -v p="$t_p99" 'BEGIN { print (p < 100) ? 1 : 0 }')
info "target: over 10,000 events/s end to end (telegram): $(verdict "$t_rate" "$rate_ok")"
if [[ "$t_p99" != - && "${R[half_rate]:-0}" -lt 5000 ]]; then
	info "target: p99 under 100 ms at half of 10,000/s: $(verdict "$t_p99" "$p99_ok") at $(v half_rate)/s" \
		"(measured at half the rate reached, not at 5,000/s)"
else
	info "target: p99 under 100 ms at half of 10,000/s: $(verdict "$t_p99" "$p99_ok")"
fi
if [[ -n "${R[tg_invalid]:-}${R[half_invalid]:-}${R[email_invalid]:-}" ]]; then
	info "WARNING: a service restarted or a connection was lost during a run (see above); run again"
fi
