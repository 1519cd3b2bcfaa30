#!/usr/bin/env bash
# test_migrate.sh - `vestnik migrate` against a real PostgreSQL.
#
# Works in throwaway databases (vn_migrate_test_<pid>[_b]) created from the
# services' DATABASE_URL and dropped on exit. Checks: the first run applies
# every migration, the second changes nothing, --status reads without
# writing, an edited or badly named migration is refused, a failing
# migration is rolled back, two concurrent runs serialize, and an
# unreachable database is reported without the password.
#
# Env: VN_SOURCE_DIR (repo root), VESTNIK_BIN (the binary),
#      VESTNIK_STATE_DIR (default $VN_SOURCE_DIR/.services, holds `env`).
# Prints `ok - ...` / `not ok - ...` per check and `N passed, M failed`.
#
# check ... eval '...' expands later on purpose; cleanup runs from the trap.
# shellcheck disable=SC2016,SC2317,SC2001
set -uo pipefail

src="${VN_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
bin="${VESTNIK_BIN:-$src/build/vestnik}"
envfile="${VESTNIK_STATE_DIR:-$src/.services}/env"
migrations="$src/db/migrations"

passed=0
failed=0
ok() {
	echo "ok - $*"
	passed=$((passed + 1))
}
not_ok() {
	echo "not ok - $*"
	failed=$((failed + 1))
}
# check DESCRIPTION COMMAND...: ok if the command succeeds.
check() {
	local desc=$1
	shift
	if "$@"; then ok "$desc"; else not_ok "$desc"; fi
}
finish() {
	echo "$passed passed, $failed failed"
	[[ $failed -eq 0 ]]
	exit
}
bail() {
	not_ok "$*"
	finish
}

[[ -x "$bin" ]] || bail "VESTNIK_BIN ($bin) is not an executable; build vestnik first"
[[ -f "$envfile" ]] || bail "no services env file $envfile; run scripts/services up postgres"
command -v psql >/dev/null || bail "psql is not installed"
set -a
# shellcheck disable=SC1090
. "$envfile"
set +a
[[ -n "${DATABASE_URL:-}" ]] || bail "$envfile does not set DATABASE_URL"

admin_url=$DATABASE_URL
db="vn_migrate_test_$$"
db_b="${db}_b"
# The same URL with another database name (path), keeping any ?query.
url_for() {
	local base=${admin_url%%\?*}
	local query=${admin_url#"$base"}
	echo "${base%/*}/$1$query"
}
url=$(url_for "$db")
url_b=$(url_for "$db_b")
tmp=$(mktemp -d)

psql_admin() { psql -X -q -v ON_ERROR_STOP=1 "$admin_url" "$@"; }
# q SQL: one value (or rows) from the test database, unaligned.
q() { psql -X -A -t -q -v ON_ERROR_STOP=1 "$url" -c "$1"; }

cleanup() {
	psql_admin -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" 2>/dev/null
	psql_admin -c "DROP DATABASE IF EXISTS $db_b WITH (FORCE)" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

psql_admin -c "CREATE DATABASE $db" -c "CREATE DATABASE $db_b" ||
	bail "cannot create test databases through $envfile's DATABASE_URL; is PostgreSQL up?"

# migrate URL DIR [ARGS...]: run vestnik migrate; sets $out (stdout+stderr) and $rc.
out=""
rc=0
migrate() {
	local u=$1 dir=$2
	shift 2
	out=$(DATABASE_URL="$u" MIGRATIONS_DIR="$dir" "$bin" migrate "$@" 2>&1)
	rc=$?
}
has() { grep -qF -- "$1" <<<"$out"; }
lacks() { ! grep -qF -- "$1" <<<"$out"; }
show() { sed 's/^/#   /' <<<"$out"; }

nfiles=$(find "$migrations" -maxdepth 1 -name '[0-9]*_*.sql' | wc -l)
last=$(find "$migrations" -maxdepth 1 -name '[0-9]*_*.sql' -printf '%f\n' | sort -n | tail -n 1)
next=$(printf '%04d' $((10#${last%%_*} + 1)))
state_sql="SELECT string_agg(version || ' ' || name || ' ' || checksum || ' ' || applied_at, ',' ORDER BY version) FROM public.schema_migrations"

# --- first run applies everything
migrate "$url" "$migrations"
if [[ $rc -eq 0 ]] && has "applying 0001_init" && has "applied $nfiles migration"; then
	ok "first run applies every migration ($nfiles)"
else
	not_ok "first run applies every migration ($nfiles) (exit $rc)"
	show
fi
for t in bot.users bot.telegram_links bot.preferences notify.events notify.deliveries notify.reminders; do
	check "table $t exists" [ "$(q "SELECT to_regclass('$t') IS NOT NULL")" = t ]
done
check "notify.deliveries has UNIQUE (event_id, user_id, channel)" [ "$(q "
	SELECT count(*) FROM pg_constraint
	WHERE conrelid = 'notify.deliveries'::regclass AND contype = 'u'
	  AND pg_get_constraintdef(oid) = 'UNIQUE (event_id, user_id, channel)'")" = 1 ]
dup=$(psql -X -q -v ON_ERROR_STOP=1 "$url" 2>&1 <<'SQL'
INSERT INTO notify.events (id, type, version, source, occurred_at, payload)
VALUES ('00000000-0000-0000-0000-000000000001', 'task.due', 1, 'test', now(), '{}');
INSERT INTO notify.deliveries (event_id, user_id, channel)
VALUES ('00000000-0000-0000-0000-000000000001', 'u1', 'telegram');
INSERT INTO notify.deliveries (event_id, user_id, channel)
VALUES ('00000000-0000-0000-0000-000000000001', 'u1', 'telegram');
SQL
)
check "a second delivery row for the same (event, user, channel) is refused" \
	grep -q deliveries_event_user_channel_key <<<"$dup"
check "schema_migrations has one row per file" [ "$(q 'SELECT count(*) FROM public.schema_migrations')" = "$nfiles" ]
sum=$(sha256sum "$migrations/0001_init.sql" | cut -d' ' -f1)
check "0001's recorded checksum is the SHA-256 of the file" \
	[ "$(q 'SELECT checksum FROM public.schema_migrations WHERE version = 1')" = "$sum" ]
before=$(q "$state_sql")

# --- second run is a no-op
migrate "$url" "$migrations"
check "second run exits 0 and says nothing to do" eval '[[ $rc -eq 0 ]] && has "nothing to do: $nfiles applied"'
check "second run applies nothing (rows and applied_at unchanged)" [ "$(q "$state_sql")" = "$before" ]

# --- --status reads only
migrate "$url" "$migrations" --status
check "--status exits 0 and lists 0001 as applied" eval '[[ $rc -eq 0 ]] && grep -qE "^0001 +init +applied" <<<"$out"'
migrate "$url_b" "$migrations" --status
check "--status on an empty database lists 0001 as pending" eval '[[ $rc -eq 0 ]] && grep -qE "^0001 +init +pending" <<<"$out"'
check "--status creates nothing" [ "$(psql -X -A -t -q "$url_b" -c "SELECT to_regclass('public.schema_migrations') IS NULL")" = t ]

# --- an edited migration is refused
mkdir "$tmp/edited"
cp "$migrations"/*.sql "$tmp/edited/"
printf '\n-- an edit after the fact\n' >>"$tmp/edited/0001_init.sql"
migrate "$url" "$tmp/edited"
if [[ $rc -eq 1 ]] && has "0001_init.sql was edited after it was applied"; then
	ok "an edited 0001 is refused with exit 1, naming 0001"
else
	not_ok "an edited 0001 is refused with exit 1, naming 0001 (exit $rc)"
	show
fi
migrate "$url" "$tmp/edited" --status
check "--status reports the edited 0001 and exits 1" eval '[[ $rc -eq 1 ]] && grep -qE "^0001 +init +EDITED" <<<"$out"'

# --- a malformed file name is refused (by --dir too)
mkdir "$tmp/badname"
cp "$migrations"/*.sql "$tmp/badname/"
echo 'SELECT 1;' >"$tmp/badname/002_Add-Stuff.sql"
migrate "$url" "$tmp/badname"
check "a malformed file name gives exit 1 naming the file" eval '[[ $rc -eq 1 ]] && has "002_Add-Stuff.sql"'
migrate "$url" /nonexistent --dir "$tmp/badname"
check "--dir overrides MIGRATIONS_DIR" eval '[[ $rc -eq 1 ]] && has "002_Add-Stuff.sql"'

# --- a failing migration is rolled back whole and not recorded
mkdir "$tmp/broken"
cp "$migrations"/*.sql "$tmp/broken/"
printf 'CREATE TABLE public.half_done (x int);\nSELECT 1;\nCREATE TABLE public.never (x nosuchtype);\n' \
	>"$tmp/broken/${next}_broken.sql"
migrate "$url" "$tmp/broken"
if [[ $rc -eq 1 ]] && has "${next}_broken.sql:3:" && has "nosuchtype" && has "rolled back"; then
	ok "a failing migration gives exit 1 with file:line and PostgreSQL's message"
else
	not_ok "a failing migration gives exit 1 with file:line and PostgreSQL's message (exit $rc)"
	show
fi
check "the failing migration left nothing behind" \
	[ "$(q "SELECT to_regclass('public.half_done') IS NULL AND NOT EXISTS (SELECT 1 FROM public.schema_migrations WHERE version = $((10#$next)))")" = t ]
check "earlier migrations are still recorded unchanged" [ "$(q "$state_sql")" = "$before" ]

# --- two concurrent runs serialize on the advisory lock
mkdir "$tmp/slow"
cp "$migrations"/*.sql "$tmp/slow/"
printf 'SELECT pg_sleep(1);\nCREATE TABLE public.slow (x int);\n' >"$tmp/slow/${next}_slow.sql"
DATABASE_URL="$url_b" MIGRATIONS_DIR="$tmp/slow" "$bin" migrate >"$tmp/a.log" 2>&1 &
pid_a=$!
sleep 0.3
DATABASE_URL="$url_b" MIGRATIONS_DIR="$tmp/slow" "$bin" migrate >"$tmp/b.log" 2>&1
rc_b=$?
wait "$pid_a"
rc_a=$?
rows_b=$(psql -X -A -t -q "$url_b" -c 'SELECT count(*) FROM public.schema_migrations')
if [[ $rc_a -eq 0 && $rc_b -eq 0 && $rows_b -eq $((nfiles + 1)) ]]; then
	ok "two concurrent runs both exit 0 and apply each migration once"
else
	not_ok "two concurrent runs both exit 0 and apply each migration once (exits $rc_a/$rc_b, $rows_b rows)"
	sed 's/^/#   /' "$tmp/a.log" "$tmp/b.log"
fi

# --- unreachable database: clear message, no password
secret="s3cr3t-pw-$$"
migrate "postgresql://vestnik:$secret@127.0.0.1:1/vestnik" "$migrations"
if [[ $rc -eq 1 ]] && has "cannot connect to PostgreSQL at 127.0.0.1:1" && lacks "$secret"; then
	ok "an unreachable database gives exit 1, names the host and hides the password"
else
	not_ok "an unreachable database gives exit 1, names the host and hides the password (exit $rc)"
	show
fi

# --- usage errors
migrate "$url" "$migrations" --bogus
check "an unknown option gives exit 2" [ "$rc" -eq 2 ]

finish
