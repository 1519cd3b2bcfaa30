#!/usr/bin/env bash
# docker/compose.yml is valid for the docker-compose we install (Debian's
# 1.29) and defines the whole stack: redis, rabbitmq, postgres, mailhog,
# the one-shot migrate and vestnik, which waits for all of them.
# Needs no Docker engine: `docker-compose config` only parses and resolves.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

compose=(docker-compose -f "$VN_SOURCE_DIR/docker/compose.yml")
command -v docker-compose >/dev/null ||
	vn_fail "docker-compose is not installed; run scripts/deps"
out="$VN_TMP/config.out"

code=0
"${compose[@]}" config >"$out" 2>&1 || code=$?
[[ "$code" == 0 ]] || vn_fail "docker-compose config failed (exit $code): $(head -c 2000 "$out")"
vn_ok "docker-compose -f docker/compose.yml config succeeds"

code=0
"${compose[@]}" config -q >"$out" 2>&1 || code=$?
vn_assert_eq "$code:$(cat "$out")" "0:" "config -q is silent and exits 0"

services="$("${compose[@]}" config --services | sort | tr '\n' ' ')"
vn_assert_eq "$services" "mailhog migrate postgres rabbitmq redis vestnik " \
	"the stack is redis, rabbitmq, postgres, mailhog, migrate, vestnik"

# The resolved config, as JSON, for the structural checks below.
"${compose[@]}" config >"$out"
json="$(/usr/bin/python3 -c 'import json, sys, yaml; print(json.dumps(yaml.safe_load(sys.stdin)))' <"$out")"
check() { # WHAT PYTHON-EXPRESSION over c (the config)
	local r
	r="$(/usr/bin/python3 -c "import json, os, sys; c = json.loads(sys.stdin.read()); print(bool($2))" <<<"$json" 2>&1)" || true
	vn_assert_eq "$r" True "$1"
}
check "vestnik waits for migrate to complete successfully" \
	"c['services']['vestnik']['depends_on']['migrate']['condition'] == 'service_completed_successfully'"
for dep in redis rabbitmq postgres mailhog; do
	check "vestnik waits for $dep to be healthy" \
		"c['services']['vestnik']['depends_on']['$dep']['condition'] == 'service_healthy'"
	check "$dep has a healthcheck" "'test' in c['services']['$dep']['healthcheck']"
done
check "migrate runs 'vestnik migrate' after postgres is healthy" \
	"c['services']['migrate']['command'] == ['migrate'] and c['services']['migrate']['depends_on']['postgres']['condition'] == 'service_healthy'"
for svc in vestnik migrate; do
	check "$svc builds from docker/Dockerfile in the repo root" \
		"c['services']['$svc']['build']['dockerfile'] == 'docker/Dockerfile' and os.path.realpath(c['services']['$svc']['build']['context']) == os.path.realpath('$VN_SOURCE_DIR')"
	check "$svc points REDIS_URL, DATABASE_URL, AMQP_URL, SMTP_HOST at the services" \
		"all(h in c['services']['$svc']['environment'][k] for k, h in (('REDIS_URL', '//redis:'), ('DATABASE_URL', '@postgres:'), ('AMQP_URL', '@rabbitmq:'), ('SMTP_HOST', 'mailhog')))"
done
[[ -f "$VN_SOURCE_DIR/docker/Dockerfile" ]] || vn_fail "docker/Dockerfile is missing"
vn_assert_contains "$(cat "$VN_SOURCE_DIR/docker/Dockerfile")" 'ENTRYPOINT ["vestnik"]' \
	"the image's entrypoint is vestnik"
vn_done
