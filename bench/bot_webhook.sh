#!/usr/bin/env bash
# bench/bot_webhook.sh — webhook throughput and latency of a two-state echo bot:
# vestnik (`vestnik bot`, flow bench/bot/flows/echo.yaml) vs the same bot in
# grammY (bench/peers/grammy/echo_bot.js), one after the other in the same run,
# against the same Redis and a fresh fake Bot API server each.
#
# Per update, both bots read the chat's state from Redis, flip it between two
# states (ping/pong), store it, and reply with the text (sendMessage to the
# fake). Each answers the webhook request only once the new state is stored:
#   vestnik  load (HGETALL) -> step -> one Lua commit (version CAS, update_id
#            dedup, state + data, outbox, lease) -> 200; then, after the 200,
#            the outbox is carried out: limiter check (Redis), sendMessage,
#            outbox pop and lease release.
#   grammY   session GET -> middleware: await ctx.reply (sendMessage) ->
#            session SET ... EX -> 200 (webhookCallback awaits all of it).
# So grammY's latency includes the sendMessage round trip and vestnik's does
# not; vestnik does more Redis work per update (and its sends are durable).
#
# Load: wrk (-t2 -c64 by default) with bench/bot/webhook.lua: a private text
# message per request, with the secret header, round robin over many chats so
# a chat never has two updates in flight (as with Telegram). A short warm-up
# run first, then the measured run. Afterwards the fake's counters tell how
# many replies were really sent, and every request must have got a 2xx.
#
# Replies are not held back by Telegram's limits in either bot: the fake runs
# in its default, non-strict mode (it never answers 429), grammY has no
# limiter, and vestnik runs with TELEGRAM_RATE_LIMIT=off. vestnik answers the
# webhook after its commit and sends the reply from the outbox right after,
# so replies may trail the 200s; the output shows replies/s during the run
# and how many were still queued when the bot was stopped (they are in Redis
# and go out after a restart), and the check is sent + queued = accepted.
#
# Needs: `make build` (vestnik, vestnik-fake-telegram), `make services-up`
# (Redis), wrk, node and npm (the grammY peer is installed from
# bench/peers/grammy/package-lock.json on first use, npm ci), redis-cli, curl,
# python3. Both bots use database BENCH_REDIS_DB (11) of the services' Redis,
# and only this bench's keys are deleted there (SCAN + UNLINK of
# vn:conv:{71000?????:…}*, vn:tg:{987654321}*, vnbench:grammy:*; never FLUSH*),
# before each bot and on exit.
#
# Env: VESTNIK_BIN (build/vestnik), FAKE_TELEGRAM_BIN (next to it),
# BENCH_THREADS (2), BENCH_CONNECTIONS (64), BENCH_DURATION (12s),
# BENCH_WARMUP (3s), BENCH_CHATS (10000, at most 99999), BENCH_PORT (18090,
# the next free one is taken), BENCH_ONLY (vestnik or grammy: run one side),
# BENCH_KEEP (a directory: the bots' logs and wrk's output are copied there),
# BENCH_REDIS_DB (11: the database both bots use on the services' Redis).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="${VESTNIK_BIN:-$repo/build/vestnik}"
fake="${FAKE_TELEGRAM_BIN:-$(dirname "$bin")/vestnik-fake-telegram}"
envfile="${VESTNIK_STATE_DIR:-$repo/.services}/env"
peer="$repo/bench/peers/grammy"
flows="$repo/bench/bot/flows"
tpls="$repo/bench/bot/templates"
lua="$repo/bench/bot/webhook.lua"
threads="${BENCH_THREADS:-2}"
conns="${BENCH_CONNECTIONS:-64}"
duration="${BENCH_DURATION:-12s}"
warmup="${BENCH_WARMUP:-3s}"
chats="${BENCH_CHATS:-10000}"
only="${BENCH_ONLY:-}"
token="987654321:bench"
secret="vestnik-bench-secret"
chat_base=7100000000 # chats are chat_base+1 .. chat_base+chats; chat_base itself is the probe
conv_pat="vn:conv:{71000?????:71000?????}"
limit_pat="vn:tg:{987654321}"
gprefix="vnbench:grammy:"

die() {
	echo "bench: $*" >&2
	exit 1
}

# ---- prerequisites ----------------------------------------------------------------
[[ -x "$bin" ]] || die "$bin not built; run 'make build'"
[[ -x "$fake" ]] || die "$fake not built; run 'make build'"
for tool in wrk node npm redis-cli curl python3; do
	command -v "$tool" >/dev/null || die "$tool is missing; run scripts/deps"
done
if ! [[ "$chats" =~ ^[0-9]+$ ]] || ((chats < threads || chats > 99999)); then
	die "BENCH_CHATS must be $threads..99999 (the bench's keys are matched by chat id pattern)"
fi
[[ -z "$only" || "$only" == vestnik || "$only" == grammy ]] || die "BENCH_ONLY is vestnik or grammy"
[[ -r "$envfile" ]] || die "$envfile missing; run 'make services-up'"
set -a
# shellcheck disable=SC1090
. "$envfile"
set +a
[[ -n "${REDIS_URL:-}" ]] || die "REDIS_URL is not set in $envfile"
# Both bots use their own logical database of the services' Redis, so vestnik's
# outbox sweeper only ever sees the bench's conversations (not the leftovers
# of tests sharing database 0).
redis_db="${BENCH_REDIS_DB:-11}"
[[ "$redis_db" =~ ^[0-9]+$ ]] || die "BENCH_REDIS_DB must be a database number"
[[ "$REDIS_URL" =~ ^(redis://[^/]+)(/[0-9]*)?/?$ ]] || die "REDIS_URL $REDIS_URL: expected redis://host:port[/db]"
REDIS_URL="${BASH_REMATCH[1]}/$redis_db"
export REDIS_URL

rcli() { redis-cli -u "$REDIS_URL" --no-auth-warning "$@"; }
[[ "$(rcli ping 2>&1)" == PONG ]] || die "Redis at $REDIS_URL does not answer; run 'make services-up'"

if ! out="$("$bin" flow check "$flows" --templates "$tpls" 2>&1)"; then
	die "the bench flow does not check:"$'\n'"$out"
fi
if ! out="$("$bin" template check "$tpls" 2>&1)"; then
	die "the bench templates do not check:"$'\n'"$out"
fi

if [[ "$only" != vestnik ]]; then
	if [[ ! -f "$peer/node_modules/grammy/package.json" ||
		! -f "$peer/node_modules/@grammyjs/storage-redis/package.json" ||
		! -f "$peer/node_modules/ioredis/package.json" ]]; then
		echo "bench: installing the grammY peer (npm ci in bench/peers/grammy)"
		npm ci --prefix "$peer" --no-audit --no-fund --loglevel=error >/dev/null ||
			die "npm ci in bench/peers/grammy failed (is the npm registry reachable?)"
	fi
	(cd "$peer" && node -e 'require("grammy"); require("@grammyjs/storage-redis"); require("ioredis")') ||
		die "the grammY peer does not load; remove bench/peers/grammy/node_modules and run again"
fi

# ---- processes and cleanup --------------------------------------------------------
work="$(mktemp -d "${TMPDIR:-/tmp}/vn-botbench.XXXXXX")"
bot_pid=""
fake_pid=""
wrk_pid=""

# stop_pid PID: SIGTERM, up to 15 s (vestnik's SHUTDOWN_TIMEOUT is 10 s), then
# SIGKILL. Returns the exit code.
stop_pid() {
	local pid="$1" code=0
	[[ -n "$pid" ]] || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for _ in $(seq 1 150); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || code=$?
	return "$code"
}

# rdel PATTERN...: unlink every key matching (SCAN, never KEYS or FLUSH*); prints the count.
rdel() {
	local pat cursor n=0
	local -a page
	for pat in "$@"; do
		cursor=0
		while :; do
			mapfile -t page < <(rcli scan "$cursor" MATCH "$pat" COUNT 5000)
			((${#page[@]} > 0)) || return 1
			cursor="${page[0]}"
			if ((${#page[@]} > 1)); then
				rcli unlink "${page[@]:1}" >/dev/null
				n=$((n + ${#page[@]} - 1))
			fi
			[[ "$cursor" == 0 ]] && break
		done
	done
	echo "$n"
}

# rcount PATTERN: how many keys match.
rcount() {
	local cursor=0 n=0
	local -a page
	while :; do
		mapfile -t page < <(rcli scan "$cursor" MATCH "$1" COUNT 5000)
		((${#page[@]} > 0)) || return 1
		cursor="${page[0]}"
		n=$((n + ${#page[@]} - 1))
		[[ "$cursor" == 0 ]] && break
	done
	echo "$n"
}

# The bench's conversations in vestnik's outbox index (normally none are left).
clean_index() {
	local cursor=0 i
	local -a page members
	while :; do
		mapfile -t page < <(rcli zscan vn:outbox:index "$cursor" MATCH "71000?????:71000?????" COUNT 1000)
		((${#page[@]} > 0)) || return 1
		cursor="${page[0]}"
		members=()
		for ((i = 1; i < ${#page[@]}; i += 2)); do members+=("${page[i]}"); done
		((${#members[@]} == 0)) || rcli zrem vn:outbox:index "${members[@]}" >/dev/null
		[[ "$cursor" == 0 ]] && break
	done
}

clean_keys() {
	rdel "$conv_pat*" "$limit_pat*" "$gprefix*" >/dev/null
	clean_index
}

cleanup() {
	local code=$?
	[[ -z "$wrk_pid" ]] || { kill -TERM "$wrk_pid" 2>/dev/null; wait "$wrk_pid" 2>/dev/null; } || true
	stop_pid "$bot_pid" || true
	stop_pid "$fake_pid" || true
	bot_pid=""
	fake_pid=""
	clean_keys 2>/dev/null || true
	if [[ -n "${BENCH_KEEP:-}" ]]; then
		mkdir -p "$BENCH_KEEP" && cp -r "$work"/. "$BENCH_KEEP"/ && echo "bench: logs kept in $BENCH_KEEP"
	fi
	rm -rf "$work"
	exit "$code"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_fake: a fresh fake Bot API server (not strict) on a free port; sets api.
start_fake() {
	stop_pid "$fake_pid" || true
	fake_pid=""
	: >"$work/fake.out"
	"$fake" --host 127.0.0.1 --port 0 --log-level warn --max-calls 1000 \
		>"$work/fake.out" 2>"$work/fake.log" </dev/null &
	fake_pid=$!
	local port=""
	for _ in $(seq 1 50); do
		port=$(sed -n 's/.*"listening":\([0-9]*\).*/\1/p' "$work/fake.out" | head -1)
		[[ -n "$port" ]] && break
		sleep 0.1
	done
	[[ -n "$port" ]] || die "the fake did not start: $(cat "$work/fake.log")"
	api="http://127.0.0.1:$port"
}

# fake_stat KEY: a number from /_fake/stats (messages_sent, calls.sendMessage).
fake_stat() {
	curl -s "$api/_fake/stats" | python3 -c '
import json, sys
v = json.load(sys.stdin)
for k in sys.argv[1].split("."):
    v = v.get(k, 0) if isinstance(v, dict) else 0
print(v)' "$1"
}

free_port() {
	local port="$1"
	while [[ -n "$(ss -Hltn "( sport = :$port )" 2>/dev/null)" ]]; do
		port=$((port + 1))
	done
	echo "$port"
}

# probe URL LOG: post one update (the probe chat) until it gets 200, up to 15 s.
probe() {
	local code="" body
	body='{"update_id":1,"message":{"message_id":1,"date":'"$(date +%s)"',"chat":{"id":'"$chat_base"
	body+=',"first_name":"Bench","type":"private"},"from":{"id":'"$chat_base"',"is_bot":false,'
	body+='"first_name":"Bench","language_code":"en"},"text":"probe"}}'
	for _ in $(seq 1 150); do
		kill -0 "$bot_pid" 2>/dev/null || { echo "bench: the bot exited; its log:" >&2; tail -n 20 "$2" >&2; exit 1; }
		code=$(curl -s -o "$work/probe.out" -m 2 -w '%{http_code}' -H 'Content-Type: application/json' \
			-H "X-Telegram-Bot-Api-Secret-Token: $secret" -d "$body" "$1" || true)
		[[ "$code" == 200 ]] && return 0
		sleep 0.1
	done
	echo "bench: the webhook did not answer 200 within 15 s (last: $code $(cat "$work/probe.out" 2>/dev/null)); log:" >&2
	tail -n 20 "$2" >&2
	exit 1
}

redis_run_id() { rcli info server | sed -n 's/^run_id:\([0-9a-f]*\).*/\1/p'; }

# cpu_ticks PID: utime + stime of a process, in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
hz="$(getconf CLK_TCK)"

# run_wrk URL DURATION UPDATE_BASE NAME: one wrk run; leaves its RESULT line in $work/NAME.res.
# (wrk runs in the background so that a signal stops the bench at once.)
run_wrk() {
	local rc=0
	wrk -t"$threads" -c"$conns" -d"$2" --timeout 10s --latency -s "$lua" "$1" \
		-- "$secret" "$chats" "$chat_base" "$3" "$threads" >"$work/$4.wrk" 2>&1 </dev/null &
	wrk_pid=$!
	wait "$wrk_pid" || rc=$?
	wrk_pid=""
	if ((rc != 0)); then
		cat "$work/$4.wrk" >&2
		die "wrk failed"
	fi
	grep '^RESULT ' "$work/$4.wrk" >"$work/$4.res" || { cat "$work/$4.wrk" >&2; die "no RESULT line from wrk"; }
}

# res NAME KEY: a value from a RESULT line.
res() { tr ' ' '\n' <"$work/$1.res" | sed -n "s/^$2=//p"; }

# outbox_pending: effect batches left in the bench conversations' outboxes (vestnik).
outbox_pending() {
	local cursor=0 key
	local -a page keys=()
	while :; do
		mapfile -t page < <(rcli scan "$cursor" MATCH "$conv_pat:outbox" COUNT 5000)
		((${#page[@]} > 0)) || return 1
		cursor="${page[0]}"
		keys+=("${page[@]:1}")
		[[ "$cursor" == 0 ]] && break
	done
	((${#keys[@]} > 0)) || { echo 0; return 0; }
	for key in "${keys[@]}"; do echo "LLEN $key"; done | rcli | awk '{ n += $1 } END { print n + 0 }'
}

# summarize_log LOG FROM TO: the bot's log lines FROM..TO (warn and up) grouped
# by message (numbers ignored), most frequent first, each with its first line.
summarize_log() {
	sed -n "$2,$3p" "$1" | python3 -c '
import collections, json, re, sys
c, first = collections.Counter(), {}
for line in sys.stdin:
    try:
        m = json.loads(line)
        msg = "%s %s: %s" % (m.get("level", "?"), m.get("module", "?"), m.get("msg", ""))
        if "ms" in m:
            msg += " (%s ms)" % m["ms"]
    except ValueError:
        msg = line.strip()
    k = re.sub(r"\d+", "N", msg)
    c[k] += 1
    first.setdefault(k, msg[:220])
for k, n in c.most_common(6):
    print("     | %6d x %s" % (n, first[k]))
if len(c) > 6:
    print("     | ... and %d other kinds" % (len(c) - 6))'
}

# measure NAME WEBHOOK_URL LOG: warm-up, measured run, the replies, stop the
# bot, checks; writes $work/NAME.sum.
measure() {
	local name="$1" url="$2" log="$3" rid0
	rid0=$(redis_run_id)
	probe "$url" "$log"
	echo "   warm-up $warmup, then $duration measured: wrk -t$threads -c$conns over $chats chats"
	run_wrk "$url" "$warmup" 1 "$name-warm"
	local t0 c0 s0 t1 c1 s1
	s0=$(fake_stat messages_sent)
	t0=$(date +%s%N)
	c0=$(cpu_ticks "$bot_pid")
	run_wrk "$url" "$duration" 1000000000 "$name"
	c1=$(cpu_ticks "$bot_pid")
	t1=$(date +%s%N)
	s1=$(fake_stat messages_sent)
	local rss
	rss=$(awk '/^VmHWM:/ { printf "%.0f", $2 / 1024 }' "/proc/$bot_pid/status")
	# Accepted: the probe and every 2xx of both runs. Replies may be sent after
	# the 200 (vestnik), and requests cut off when wrk stops are still
	# processed, so give the count up to 3 s to settle.
	local accepted sent=0 last=-1 stable=0
	accepted=$((1 + $(res "$name-warm" requests) - $(res "$name-warm" non2xx) +
		$(res "$name" requests) - $(res "$name" non2xx)))
	for _ in $(seq 1 15); do
		sent=$(fake_stat messages_sent)
		if [[ "$sent" == "$last" ]]; then
			stable=$((stable + 1))
			((stable >= 2 && sent >= accepted)) && break
		else
			stable=0
		fi
		last="$sent"
		sleep 0.2
	done
	# Stop the bot; whatever vestnik has not sent yet stays in its outbox.
	local from code=0 pending=0
	from=$(($(wc -l <"$log") + 1))
	stop_pid "$bot_pid" || code=$?
	bot_pid=""
	sent=$(fake_stat messages_sent)
	local calls
	calls=$(fake_stat calls.sendMessage)
	[[ "$name" == vestnik ]] && pending=$(outbox_pending)
	local check=ok
	# Every accepted update has its reply sent or queued; at most the requests
	# wrk cut off (<= connections per run) more, and a few sent at the stop but
	# not yet taken off the outbox.
	((sent + pending >= accepted && sent + pending <= accepted + 2 * conns + 64)) || check=MISMATCH
	if [[ "$(redis_run_id)" != "$rid0" ]]; then
		echo "   WARNING: Redis was restarted during this run (by something else sharing the services);" \
			"these figures are not valid"
		check=REDIS_RESTARTED
	fi
	python3 - "$work/$name.res" "$name" "$accepted" "$sent" "$pending" "$calls" "$check" \
		"$((c1 - c0))" "$hz" "$((t1 - t0))" "$rss" "$((s1 - s0))" "$code" >"$work/$name.sum" <<'PY'
import json, sys
kv = dict(p.split("=", 1) for p in open(sys.argv[1]).read().split()[1:])
r = {k: float(v) for k, v in kv.items()}
name, accepted, sent, pending, calls, check, ticks, hz, ns, rss, during, code = sys.argv[2:14]
secs = int(ns) / 1e9
r.update(name=name, accepted=int(accepted), sent=int(sent), pending=int(pending), calls=int(calls),
         check=check, cpu=100.0 * int(ticks) / int(hz) / secs, rss=int(rss),
         replies_rps=int(during) / r["seconds"], exit=int(code))
print(json.dumps(r))
PY
	python3 - "$work/$name.sum" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
errs = int(r["connect_err"] + r["read_err"] + r["write_err"] + r["timeouts"])
print(f"   {r['rps']:,.0f} updates/s ({int(r['requests'])} in {r['seconds']:.1f} s), "
      f"p50 {r['p50_ms']:.2f} ms, p90 {r['p90_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms, max {r['max_ms']:.1f} ms")
print(f"   non-2xx answers: {int(r['non2xx'])}, socket errors/timeouts: {errs}; "
      f"bot CPU {r['cpu']:.0f}% of one core, peak RSS {r['rss']} MiB")
print(f"   replies sent during the measured run: {r['replies_rps']:,.0f}/s")
queued = f" + {r['pending']} still queued in the outbox at the stop" if r["pending"] else ""
print(f"   replies sent{queued} / updates accepted (probe, warm-up, measured): "
      f"{r['sent']}{' + ' + str(r['pending']) if r['pending'] else ''} / {r['accepted']} "
      f"({r['check']}; sendMessage calls {r['calls']})")
if r["exit"]:
    print(f"   the bot exited {r['exit']} after SIGTERM")
PY
	local to
	to=$(wc -l <"$log")
	if ((from > 1)); then
		echo "   $name logged $((from - 1)) line(s) (warn and up) while running:"
		summarize_log "$log" 1 $((from - 1))
	fi
	if ((to >= from)); then
		echo "   $name logged $((to - from + 1)) line(s) (warn and up) when stopped:"
		summarize_log "$log" "$from" "$to"
	fi
}

echo "== webhook bench: two-state echo bot, Redis state (database $redis_db), replies to a fake Bot API;" \
	"$(nproc) cores shared by wrk, the bot, the fake and Redis"
echo "   no Telegram rate limits on the replies: the fake is not strict (never 429), grammY has no" \
	"limiter, and vestnik runs with TELEGRAM_RATE_LIMIT=off"
clean_keys || die "could not delete the bench's old keys from Redis"

# ---- vestnik ----------------------------------------------------------------------
if [[ "$only" != grammy ]]; then
	start_fake
	port="$(free_port "${BENCH_PORT:-18090}")"
	echo "== vestnik: $("$bin" --version 2>/dev/null | head -n 1) bot on 127.0.0.1:$port, flows bench/bot/flows, fake $api"
	HTTP_HOST=127.0.0.1 HTTP_PORT="$port" LOG_LEVEL=warn SHUTDOWN_TIMEOUT=2s \
		TELEGRAM_API_URL="$api" TELEGRAM_BOT_TOKEN="$token" TELEGRAM_WEBHOOK_SECRET="$secret" \
		TELEGRAM_WEBHOOK_PATH=/telegram/webhook FLOWS_DIR="$flows" TEMPLATES_DIR="$tpls" \
		DEFAULT_LOCALE=en TELEGRAM_RATE_LIMIT=off \
		"$bin" bot >"$work/vestnik.log" 2>&1 </dev/null &
	bot_pid=$!
	measure vestnik "http://127.0.0.1:$port/telegram/webhook" "$work/vestnik.log"
	clean_keys
fi

# ---- grammY -------------------------------------------------------------------------
if [[ "$only" != vestnik ]]; then
	start_fake
	gver=$(node -p 'require(process.argv[1]).version' "$peer/node_modules/grammy/package.json")
	sver=$(node -p 'require(process.argv[1]).version' "$peer/node_modules/@grammyjs/storage-redis/package.json")
	iver=$(node -p 'require(process.argv[1]).version' "$peer/node_modules/ioredis/package.json")
	API_ROOT="$api" BOT_TOKEN="$token" WEBHOOK_SECRET="$secret" KEY_PREFIX="$gprefix" \
		HOST=127.0.0.1 PORT=0 WEBHOOK_PATH=/telegram/webhook \
		node "$peer/echo_bot.js" >"$work/grammy.out" 2>"$work/grammy.log" </dev/null &
	bot_pid=$!
	gport=""
	for _ in $(seq 1 100); do
		gport=$(sed -n 's/.*"listening":\([0-9]*\).*/\1/p' "$work/grammy.out" | head -1)
		[[ -n "$gport" ]] && break
		kill -0 "$bot_pid" 2>/dev/null || break
		sleep 0.1
	done
	[[ -n "$gport" ]] || { cat "$work/grammy.log" >&2; die "the grammY bot did not start"; }
	echo "== grammY: grammy $gver + @grammyjs/storage-redis $sver + ioredis $iver on node" \
		"$(node --version), 127.0.0.1:$gport, fake $api"
	measure grammy "http://127.0.0.1:$gport/telegram/webhook" "$work/grammy.log"
	clean_keys
fi

# ---- the table ----------------------------------------------------------------------
python3 - "$work" "$conns" "$threads" "$chats" <<'PY'
import json, os, sys
work, conns, threads, chats = sys.argv[1:5]
rows = [json.load(open(os.path.join(work, f"{n}.sum")))
        for n in ("vestnik", "grammy") if os.path.exists(os.path.join(work, f"{n}.sum"))]
print(f"== results: wrk -t{threads} -c{conns} over {chats} chats; latency = until the webhook's 200")
print(f"   {'':8} {'updates/s':>10} {'p50 ms':>7} {'p99 ms':>7} {'non-2xx':>7} {'replies/s':>10} "
      f"{'replies sent (+queued) / accepted':>34} {'CPU':>5}")
for r in rows:
    label = "vestnik" if r["name"] == "vestnik" else "grammY"
    rep = f"{r['sent']}" + (f" (+{r['pending']})" if r["pending"] else "") + f" / {r['accepted']}"
    print(f"   {label:8} {r['rps']:>10,.0f} {r['p50_ms']:>7.2f} {r['p99_ms']:>7.2f} {int(r['non2xx']):>7} "
          f"{r['replies_rps']:>10,.0f} {rep:>34} {r['cpu']:>4.0f}%")
if len(rows) == 2:
    v, g = rows
    print(f"   vestnik/grammY: {v['rps'] / g['rps']:.2f}x updates/s (webhook answered, state committed), "
          f"{v['replies_rps'] / g['replies_rps']:.2f}x replies/s; "
          f"p50 {v['p50_ms'] / g['p50_ms']:.2f}x, p99 {v['p99_ms'] / g['p99_ms']:.2f}x (lower is better)")
    if v["rps"] > 1000 and v["pending"]:
        print("   note: vestnik answers each update once its state and outbox are committed, and sends the reply "
              "after that through its limiter (ceiling 1000/s, one Redis round trip per send, one at a time), "
              "so under this load its replies trail the updates; grammY answers after the reply is sent")
PY

fail=""
for n in vestnik grammy; do
	[[ -f "$work/$n.sum" ]] || continue
	python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
errs = r["connect_err"] + r["read_err"] + r["write_err"] + r["timeouts"]
sys.exit(0 if r["non2xx"] == 0 and errs == 0 and r["check"] == "ok" else 1)' "$work/$n.sum" ||
		fail+=" $n"
done
[[ -z "$fail" ]] || die "FAILED:$fail: non-2xx answers, socket errors, replies missing or Redis restarted (see above)"
