#!/usr/bin/env bash
# bench/tpl_render.sh — template renders per second: vestnik's engine vs the
# npm `mustache` package (mustache.js 4.2.0), same template, same data, same
# run, same output (checked byte for byte before timing).
#
# The template is a typical notification: five variables and a section, in
# Telegram HTML with Cyrillic text and characters that need escaping. Then,
# for information (no peer has them), the same message with ICU filters:
# a plural, a date in the recipient's zone, a relative time.
#
# Needs: `make build` (build/bench/bench_tpl_render) and node; the peer is
# installed from bench/peers/package-lock.json on first use (npm ci).
# Env: BUILD_DIR (build), BENCH_SECONDS (1 per round), BENCH_ROUNDS (3, best kept).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BUILD_DIR:-$repo/build}"
bench="$build/bench/bench_tpl_render"
peers="$repo/bench/peers"
secs="${BENCH_SECONDS:-1}"
rounds="${BENCH_ROUNDS:-3}"

[[ -x "$bench" ]] || { echo "bench: $bench not built; run 'make build'" >&2; exit 1; }
command -v node >/dev/null || { echo "bench: node is needed for the mustache.js peer" >&2; exit 1; }
if [[ ! -f "$peers/node_modules/mustache/package.json" ]]; then
	echo "bench: installing the peer (npm ci in bench/peers)"
	npm ci --prefix "$peers" --no-audit --no-fund --loglevel=error >/dev/null
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/vn-tplbench.XXXXXX")"
trap 'rm -rf "$work"' EXIT

# five variables (title, assignee, author, project, id) and a section
cat >"$work/plain.mustache" <<'EOF'
📌 <b>{{title}}</b>
{{assignee}}, {{author}} assigned you a task in {{project}}.
{{#checklist}}
• {{item}}
{{/checklist}}
<a href="https://tasks.example.com/t/{{id}}">Open the task</a>
EOF
cat >"$work/filters.mustache" <<'EOF'
📌 <b>{{title}}</b>
{{assignee}}, {{author}} назначила вам задачу в {{project}}: {{checklist | count | plural one="# шаг" few="# шага" many="# шагов" other="# шага"}}, срок {{due_at | datetime "long" "short"}} ({{due_at | relative}}).
{{#checklist}}
• {{item}}
{{/checklist}}
<a href="https://tasks.example.com/t/{{id}}">Открыть задачу</a>
EOF
cat >"$work/data.json" <<'EOF'
{
  "title": "Отчёт за Q1 & план <черновик>",
  "assignee": "Алексей",
  "author": "Мария Иванова",
  "project": "Финансы",
  "id": "T-1042",
  "due_at": "2026-03-10T15:00:00Z",
  "checklist": [
    {"item": "Собрать выгрузку продаж"},
    {"item": "Сверить расходы с бухгалтерией"},
    {"item": "Отправить черновик до пятницы"}
  ]
}
EOF

"$bench" "$work/plain.mustache" "$work/data.json" --print >"$work/ours.txt"
node "$repo/bench/tpl_render.js" "$work/plain.mustache" "$work/data.json" --print >"$work/peer.txt"
if ! cmp -s "$work/ours.txt" "$work/peer.txt"; then
	echo "bench: the two renders differ, the comparison would not be fair:" >&2
	diff "$work/ours.txt" "$work/peer.txt" >&2 || true
	exit 1
fi
echo "== template: 5 variables + a section over 3 items, Telegram HTML, $(wc -c <"$work/ours.txt") bytes out (identical in both)"

ours=$("$bench" "$work/plain.mustache" "$work/data.json" --seconds "$secs" --rounds "$rounds")
peer=$(node "$repo/bench/tpl_render.js" "$work/plain.mustache" "$work/data.json" --seconds "$secs" --rounds "$rounds")
filt=$("$bench" "$work/filters.mustache" "$work/data.json" --seconds "$secs" --rounds "$rounds")
echo "   vestnik      $ours"
echo "   mustache.js  $peer"
/usr/bin/env python3 - "$ours" "$peer" "$filt" "$(node --version)" <<'PY'
import json, sys
o, p, f = (json.loads(s) for s in sys.argv[1:4])
print(f"   vestnik {o['rate']:,.0f} renders/s vs mustache.js {p['version']} on node {sys.argv[4]} "
      f"{p['rate']:,.0f} renders/s: ratio {o['rate'] / p['rate']:.2f}x "
      f"({1e6 / o['rate']:.2f} us vs {1e6 / p['rate']:.2f} us per render)")
print(f"== with ICU filters (plural, datetime in Europe/Moscow, relative; vestnik only): "
      f"{f['rate']:,.0f} renders/s ({1e6 / f['rate']:.2f} us per render)")
PY
