#!/usr/bin/env bash
# bench/tg_send.sh — the Telegram client against the fake Bot API server.
#
# 1. Limits: 1,000 messages to 200 chats through the shared Redis limiter, fake
#    in strict mode (it answers 429 whenever Telegram's limits are exceeded):
#    achieved rate vs the configured global limit, and 429s received. Then the
#    same 1,000 split over two processes sharing Redis.
# 2. Throughput: sendMessage with the limiter off, many in flight over one
#    curl-multi client (keep-alive), vs one curl easy handle per request one
#    at a time (the way simple C clients do it), in the same run.
#
# Env: BENCH_MESSAGES (1000), BENCH_CHATS (200), BENCH_GLOBAL_LIMIT (30),
# BENCH_THROUGHPUT_MESSAGES (20000), BENCH_BASELINE_MESSAGES (2000), BENCH_INFLIGHT (64).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BUILD_DIR:-$repo/build}"
bench="$build/bench/bench_tg_send"
fake="$build/vestnik-fake-telegram"
envfile="${VESTNIK_STATE_DIR:-$repo/.services}/env"
n="${BENCH_MESSAGES:-1000}"
chats="${BENCH_CHATS:-200}"
limit="${BENCH_GLOBAL_LIMIT:-30}"
tn="${BENCH_THROUGHPUT_MESSAGES:-20000}"
bn="${BENCH_BASELINE_MESSAGES:-2000}"
inflight="${BENCH_INFLIGHT:-64}"

for f in "$bench" "$fake"; do
	[[ -x "$f" ]] || { echo "bench: $f not built; run 'make build'" >&2; exit 1; }
done
[[ -r "$envfile" ]] || { echo "bench: $envfile missing; run 'make services-up'" >&2; exit 1; }
set -a
# shellcheck disable=SC1090
. "$envfile"
set +a

work="$(mktemp -d "${TMPDIR:-/tmp}/vn-tgbench.XXXXXX")"
fake_pid=""
cleanup() {
	[[ -n "$fake_pid" ]] && kill "$fake_pid" 2>/dev/null && wait "$fake_pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

# start_fake ARGS...: runs the fake on a free port, sets api.
start_fake() {
	[[ -n "$fake_pid" ]] && { kill "$fake_pid"; wait "$fake_pid" 2>/dev/null || true; }
	LOG_LEVEL=error "$fake" --host 127.0.0.1 --port 0 "$@" >"$work/fake.out" 2>"$work/fake.log" &
	fake_pid=$!
	for _ in $(seq 1 50); do
		port=$(sed -n 's/.*"listening":\([0-9]*\).*/\1/p' "$work/fake.out" | head -1)
		[[ -n "$port" ]] && break
		sleep 0.1
	done
	[[ -n "${port:-}" ]] || { echo "bench: the fake did not start: $(cat "$work/fake.log")" >&2; exit 1; }
	api="http://127.0.0.1:$port"
}

fake_429s() {
	curl -s "$api/_fake/stats" | /usr/bin/python3 -c \
		'import json,sys; s=json.load(sys.stdin); print(s.get("sent_429", s.get("429s", "?")))'
}

echo "== limits: $n messages to $chats chats, global limit $limit/s, fake in strict mode"
start_fake --strict
"$bench" --api "$api" --mode limits --messages "$n" --chats "$chats" --global-limit "$limit" |
	tee "$work/one.out" | head -1
echo "   fake counted 429s: $(fake_429s)"

echo "== limits: the same $n messages from two processes sharing Redis"
start_fake --strict
half=$((n / 2))
"$bench" --api "$api" --mode limits --messages "$half" --chats "$((chats / 2))" \
	--global-limit "$limit" >"$work/a.out" &
a=$!
"$bench" --api "$api" --mode limits --messages "$half" --chats "$((chats / 2))" \
	--chat-offset "$((chats / 2))" --global-limit "$limit" >"$work/b.out" &
b=$!
wait "$a"
wait "$b"
head -1 "$work/a.out" | sed 's/^/   process 1: /'
head -1 "$work/b.out" | sed 's/^/   process 2: /'
/usr/bin/python3 - "$work/a.out" "$work/b.out" "$limit" <<'PY'
import json, sys
a, b = (json.loads(open(p).read().splitlines()[1]) for p in sys.argv[1:3])
limit = float(sys.argv[3])
secs = max(a["seconds"], b["seconds"])
rate = (a["messages"] + b["messages"]) / secs
print(f"   together: {a['messages'] + b['messages']} messages in {secs:.2f} s = {rate:.2f} msg/s, "
      f"limit {limit:.0f}/s ({100 * rate / limit:.1f}%), 429s received {a['got429'] + b['got429']}")
PY
echo "   fake counted 429s: $(fake_429s)"

echo "== throughput: sendMessage, limiter off, fake not strict"
start_fake
"$bench" --api "$api" --mode throughput --messages "$tn" --inflight "$inflight" | tee "$work/t.out" | head -1
"$bench" --api "$api" --mode throughput --messages "$bn" --inflight 1 | tee "$work/t1.out" |
	head -1 | sed 's/^throughput/one at a time (keep-alive)/'
"$bench" --api "$api" --mode baseline --messages "$bn" | tee "$work/base.out" | head -1
/usr/bin/python3 - "$work/t.out" "$work/t1.out" "$work/base.out" <<'PY'
import json, sys
t, t1, b = (json.loads(open(p).read().splitlines()[1]) for p in sys.argv[1:4])
print(f"   vestnik client ({t['messages']} in flight-limited batches) / curl-easy-per-request: "
      f"{t['rate'] / b['rate']:.1f}x requests/s")
print(f"   one at a time: p50 {t1['p50_ms']:.3f} ms vs {b['p50_ms']:.3f} ms, "
      f"p99 {t1['p99_ms']:.3f} ms vs {b['p99_ms']:.3f} ms (keep-alive vs a new connection each)")
PY
