#!/usr/bin/env bash
# bench/cachetests.sh: Sluice's cache against the public HTTP caching test
# suite (https://cache-tests.fyi, npm package http-cache-tests), the one
# nginx, Varnish, Squid and the CDNs are scored by.
#
#   bash bench/cachetests.sh                 # L1 only
#   REDIS=127.0.0.1:6379 bash bench/cachetests.sh   # with L2 (a Redis you can write to)
#
# It installs the suite with npm into a scratch directory, starts its origin
# on a loopback port (the suite's server listens on every address; a
# preloaded module binds it to 127.0.0.1), and `sluice run` in front of it
# with one cached route, `default_ttl: 0s`, then runs the suite's client
# against the gateway and prints the counts by kind (required, optimal,
# check) and every required test that did not pass, with the suite's
# message. A test whose prerequisite (depends_on) did not pass is counted as
# such, as the suite's own report does. The raw results are kept in
# $tmp/results.json with KEEP_TMP=1.
#
# Measured (2026-12-06, 0.4.5, with and without Redis): required 156 pass,
# 1 fail, 4 setup failures, 4 failed prerequisites; optimal 85 of 95; the
# required ones left are discussed in the README's cache section.
#
# Environment (defaults in brackets):
#   VERSION [0.4.5]  REDIS []  SLUICE_BIN  KEEP_TMP [0]
set -euo pipefail

VERSION=${VERSION:-0.4.5} REDIS=${REDIS:-}

script=cachetests.sh next_port=18600
# shellcheck source=bench/script.sh
source "$(dirname "$0")/script.sh"
command -v npm >/dev/null && command -v node >/dev/null || die "needs node and npm"

(cd "$tmp" && npm init -y >/dev/null && npm install --silent "http-cache-tests@$VERSION" >/dev/null) ||
	die "npm install http-cache-tests@$VERSION failed"
suite=$tmp/node_modules/http-cache-tests

cat >"$tmp/loopback.mjs" <<'JS'
// The suite's origin calls listen(port): bind it to 127.0.0.1 only.
import http from 'http'
const listen = http.Server.prototype.listen
http.Server.prototype.listen = function (port, ...rest) {
  if (typeof port === 'number' || typeof port === 'string') return listen.call(this, Number(port), '127.0.0.1', ...rest)
  return listen.call(this, port, ...rest)
}
JS

take_port port_origin
take_port port_gw
take_port port_admin
(cd "$suite" && npm_package_config_protocol=http npm_package_config_port=$port_origin \
	npm_package_config_pidfile=$tmp/origin.pid exec node --import "$tmp/loopback.mjs" server/server.mjs) \
	>"$tmp/origin.log" 2>&1 &
started+=($!)

{
	printf 'listen: 127.0.0.1:%s\nadmin: {listen: 127.0.0.1:%s}\nlog: {level: warn, format: text}\n' "$port_gw" "$port_admin"
	[[ -z $REDIS ]] || printf 'redis: {addrs: [%s]}\n' "$REDIS"
	cat <<YAML
cache: {memory: 256MiB}
pools:
  suite:
    backends: [{addr: 127.0.0.1:$port_origin}]
routes:
  - {name: all, match: {path_prefix: /}, pool: suite, cache: {enabled: true, default_ttl: 0s}}
YAML
} >"$tmp/gateway.yaml"
"$sluice" run -watch=false "$tmp/gateway.yaml" >"$tmp/gateway.log" 2>&1 &
gw=$!
started+=($gw)
wait_ok "http://127.0.0.1:$port_admin/readyz" "$gw" "$tmp/gateway.log"
for _ in $(seq 50); do # the origin answers 404 on / once it listens
	curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$port_origin/" && break
	sleep 0.1
done

(cd "$suite" && npm_config_base="http://127.0.0.1:$port_gw" npm_config_id='' npm_package_config_id='' node --no-warnings cli.mjs) >"$tmp/results.json" 2>"$tmp/cli.log" ||
	{ cat "$tmp/cli.log" >&2; die "the suite's client failed"; }

cat >"$tmp/summary.mjs" <<'JS'
// Counts results.json by kind and outcome, following depends_on.
import fs from 'fs'
const [suiteDir, resultsFile] = process.argv.slice(2)
const { default: suites } = await import(`${suiteDir}/tests/index.mjs`)
suites.push((await import(`${suiteDir}/tests/surrogate-control.mjs`)).default) // as the client runs it
const results = JSON.parse(fs.readFileSync(resultsFile, 'utf8'))
const tests = new Map()
for (const s of suites) for (const t of s.tests) tests.set(t.id, t)
const passed = (r) => r === true
const outcome = (id, seen = new Set()) => {
  const t = tests.get(id); const r = results[id]
  if (r === undefined) return 'not run'
  for (const d of t.depends_on || []) {
    if (seen.has(d)) continue
    seen.add(d)
    if (outcome(d, seen) !== 'pass') return 'prerequisite failed'
  }
  if (passed(r)) return 'pass'
  if (r[0] === 'Setup') return r[1] === 'retry' ? 'retry' : 'setup failed'
  return 'fail'
}
const counts = {}; const left = []
for (const [id, t] of tests) {
  const kind = t.kind || 'required'; const o = outcome(id)
  counts[kind] ??= {}
  counts[kind][o] = (counts[kind][o] || 0) + 1
  if (kind === 'required' && o !== 'pass' && o !== 'not run') left.push(`  ${o}: ${id}: ${JSON.stringify(results[id])}`)
}
for (const [kind, c] of Object.entries(counts)) console.log(`${kind}: ${Object.entries(c).map(([o, n]) => `${n} ${o}`).join(', ')}`)
if (left.length) console.log('required, not passed:\n' + left.join('\n'))
JS
echo "http-cache-tests $VERSION against sluice ($([[ -n $REDIS ]] && echo "L1 + Redis $REDIS" || echo "L1 only"))"
node "$tmp/summary.mjs" "$suite" "$tmp/results.json"
