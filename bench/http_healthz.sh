#!/usr/bin/env bash
# bench/http_healthz.sh — HTTP throughput of one `vestnik all` process:
# wrk against /healthz (the cheapest route: the server and loop overhead)
# and /metrics (the Prometheus text rendering), on loopback only.
#
# Env: VESTNIK_BIN (default build/vestnik), BENCH_PORT (default 18080, the
# next free one is taken if busy), BENCH_THREADS=2, BENCH_CONNECTIONS=64,
# BENCH_DURATION=5s. Loads the services env file when there is one, so
# vestnik finds Redis, PostgreSQL and RabbitMQ (scripts/services up).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="${VESTNIK_BIN:-$repo/build/vestnik}"
envfile="${VESTNIK_STATE_DIR:-$repo/.services}/env"
threads="${BENCH_THREADS:-2}"
conns="${BENCH_CONNECTIONS:-64}"
duration="${BENCH_DURATION:-5s}"

[[ -x "$bin" ]] || { echo "bench: $bin not built; run 'make build'" >&2; exit 1; }
command -v wrk >/dev/null || { echo "bench: wrk missing; run scripts/deps" >&2; exit 1; }
if [[ -r "$envfile" ]]; then
	set -a
	# shellcheck disable=SC1090
	. "$envfile"
	set +a
else
	echo "bench: no $envfile; vestnik runs with its default service URLs" >&2
fi

port="${BENCH_PORT:-18080}"
while [[ -n "$(ss -Hltn "( sport = :$port )" 2>/dev/null)" ]]; do
	port=$((port + 1))
done
url="http://127.0.0.1:$port"
work="$(mktemp -d "${TMPDIR:-/tmp}/vn-bench.XXXXXX")"
log="$work/vestnik.log"
pid=""

cleanup() {
	if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT

HTTP_HOST=127.0.0.1 HTTP_PORT="$port" LOG_LEVEL="${LOG_LEVEL:-warn}" \
	"$bin" all >"$log" 2>&1 </dev/null &
pid=$!
for ((i = 0; ; i++)); do
	if ! kill -0 "$pid" 2>/dev/null; then
		echo "bench: vestnik exited before /healthz answered; its log:" >&2
		tail -n 30 "$log" >&2
		exit 1
	fi
	[[ "$(curl -s -o /dev/null -m 1 -w '%{http_code}' "$url/healthz" || true)" == 200 ]] && break
	if ((i >= 150)); then
		echo "bench: /healthz did not answer 200 within 15 s; vestnik log:" >&2
		tail -n 30 "$log" >&2
		exit 1
	fi
	sleep 0.1
done

echo "$("$bin" --version 2>/dev/null | head -n 1 || echo vestnik) (pid $pid) on $url;" \
	"wrk -t$threads -c$conns -d$duration, $(nproc) cores"
# run PATH: one wrk run; print its throughput and latency lines plainly.
run() {
	local out
	out="$(wrk -t"$threads" -c"$conns" -d"$duration" --latency "$url$1")"
	echo "GET $1"
	awk '
		/Requests\/sec:/          { printf "  requests/s     %s\n", $2 }
		/^ +Latency +[0-9]/       { printf "  latency        avg %s, stdev %s, max %s\n", $2, $3, $4 }
		/^ +50% /                 { p50 = $2 }
		/^ +90% /                 { p90 = $2 }
		/^ +99% /                 { p99 = $2 }
		/requests in/             { sub(/,$/, "", $4); printf "  total          %s requests in %s\n", $1, $4 }
		/Non-2xx or 3xx/          { printf "  non-2xx        %s\n", $NF }
		/Socket errors/           { sub(/^ +/, ""); printf "  errors         %s\n", $0 }
		END { printf "  latency pct    p50 %s, p90 %s, p99 %s\n", p50, p90, p99 }
	' <<<"$out"
}
run /healthz
run /metrics

kill -TERM "$pid"
code=0
wait "$pid" || code=$?
pid=""
[[ "$code" == 0 ]] || { echo "bench: vestnik exited $code after SIGTERM" >&2; tail -n 20 "$log" >&2; exit 1; }
