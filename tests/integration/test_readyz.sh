#!/usr/bin/env bash
# /readyz follows Redis: 503 naming redis while it is stopped, 200 again once
# it is back, all without restarting vestnik. SIGTERM then drains and exits 0.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
vn_load_env

services="$VN_SOURCE_DIR/scripts/services"
log=$(mktemp /tmp/vn-readyz.XXXXXX.log)
RECONNECT_MAX=1s HEALTH_INTERVAL=200ms vn_start_vestnik "$log" all
pid=$VN_PID

vn_wait_for 200 GET /readyz 30 || vn_fail "/readyz never became 200: $VN_BODY"
vn_assert_contains "$VN_BODY" '"status":"ready"' "ready with every dependency up"

"$services" down redis >/dev/null
trap '"$services" up redis >/dev/null 2>&1 || true' EXIT
vn_wait_for 503 GET /readyz 10 || vn_fail "/readyz stayed $VN_STATUS with Redis stopped: $VN_BODY"
vn_assert_contains "$VN_BODY" '"redis":{"ok":false' "readyz names redis as down"
vn_assert_contains "$VN_BODY" '"postgres":{"ok":true' "postgres still reported up"
vn_http GET /healthz
vn_assert_eq "$VN_STATUS" 200 "healthz stays 200 while a dependency is down"

"$services" up redis >/dev/null
vn_wait_for 200 GET /readyz 20 || vn_fail "/readyz did not recover after Redis came back: $VN_BODY"
vn_assert_contains "$VN_BODY" '"redis":{"ok":true' "readyz sees redis again"
kill -0 "$pid" || vn_fail "vestnik died"
vn_assert_eq "$VN_PID" "$pid" "same vestnik process throughout"

vn_http GET /metrics
vn_assert_contains "$VN_BODY" 'vestnik_dependency_up{dependency="redis"} 1' "metrics show redis up"

code=0
vn_stop_vestnik || code=$?
vn_assert_eq "$code" 0 "SIGTERM drains and exits 0"
vn_done
