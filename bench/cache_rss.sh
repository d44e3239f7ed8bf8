#!/usr/bin/env bash
# bench/cache_rss.sh: the gateway's resident memory when far more distinct
# keys are cached than fit in cache.memory (issue 7).
#
#   bash bench/cache_rss.sh                       # 1,000,000 keys, 64 MiB L1
#   MEMORY=256MiB KEYS=2000000 bash bench/cache_rss.sh
#   GOMEMLIMIT=96MiB bash bench/cache_rss.sh       # the limit cache/doc.go advises
#
# It starts one `sluice origin` whose order responses are cacheable for an
# hour (300-byte JSON bodies), and `sluice run` in front of it with
# `cache: {memory: MEMORY}` (L1 only, no Redis) on a cached route, then
# sends KEYS requests, each for a distinct URL (/orders/{seq}), so every one
# is a miss that is stored and the L1 has to evict. It samples the gateway's
# VmRSS once a second and prints: the RSS before the load, the peak during it
# (VmHWM), the RSS at the end, the L1's own count of stored bytes
# (sluice_cache_stored_bytes), and the overhead of RSS over MEMORY.
# Only loopback is touched; every process it starts is stopped on exit.
#
# Measured (2026-12-06, 2 vCPU, defaults): 1,000,000 keys stored, about
# 620,000 evicted for size, the L1 at 64.0 MiB; RSS 18 MiB before, peak 168
# MiB without GOMEMLIMIT, 104 MiB with GOMEMLIMIT=96MiB (memory + 40 MiB).
#
# Environment (defaults in brackets):
#   KEYS [1000000]  MEMORY [64MiB]  CONNECTIONS [64]
#   GOMEMLIMIT []   passed to the gateway when set
#   SLUICE_BIN      use this binary instead of building one
#   KEEP_TMP [0]    1: keep the scratch directory (config, JSON, logs)
set -euo pipefail

KEYS=${KEYS:-1000000} MEMORY=${MEMORY:-64MiB} CONNECTIONS=${CONNECTIONS:-64}

script=cache_rss.sh next_port=18500
# shellcheck source=bench/script.sh
source "$(dirname "$0")/script.sh"

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
hwm_kib() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

take_port port_origin
take_port port_gw
take_port port_admin
"$sluice" origin -listen "127.0.0.1:$port_origin" -cache-control "public, max-age=3600" >"$tmp/origin.log" 2>&1 &
started+=($!)
wait_ok "http://127.0.0.1:$port_origin/healthz" "$!" "$tmp/origin.log"

cat >"$tmp/gateway.yaml" <<EOF
listen: 127.0.0.1:$port_gw
admin: {listen: 127.0.0.1:$port_admin}
log: {level: warn, format: text}
cache: {memory: $MEMORY}
pools:
  orders:
    backends: [{addr: 127.0.0.1:$port_origin}]
routes:
  - {name: orders, match: {path_prefix: /orders}, pool: orders, cache: {enabled: true}}
EOF
if [[ -n ${GOMEMLIMIT:-} ]]; then
	env -u SLUICE_BIN GOMEMLIMIT="$GOMEMLIMIT" "$sluice" run -watch=false "$tmp/gateway.yaml" >"$tmp/gateway.log" 2>&1 &
else
	env -u SLUICE_BIN -u GOMEMLIMIT "$sluice" run -watch=false "$tmp/gateway.yaml" >"$tmp/gateway.log" 2>&1 &
fi
gw=$!
started+=($gw)
wait_ok "http://127.0.0.1:$port_admin/readyz" "$gw" "$tmp/gateway.log"
curl -s -o /dev/null "http://127.0.0.1:$port_gw/orders/1" # warm the path
rss0=$(rss_kib "$gw")

"$sluice" bench -c "$CONNECTIONS" -warmup 0 -duration 0 -requests "$KEYS" -timeout 10s -o json \
	"http://127.0.0.1:$port_gw/orders/{seq}" >"$tmp/bench.json" 2>"$tmp/bench.log" &
bench=$!
started+=($bench)
peak=0
while kill -0 "$bench" 2>/dev/null; do
	r=$(rss_kib "$gw")
	((r > peak)) && peak=$r
	sleep 1
done
wait "$bench" || true
sleep 2 # let the asynchronous stores land
rss1=$(rss_kib "$gw")
hwm=$(hwm_kib "$gw")
metrics=$(curl -s "http://127.0.0.1:$port_admin/metrics")
stored=$(awk '/^sluice_cache_stored_bytes/ { s += $2 } END { printf "%.0f", s }' <<<"$metrics")
fills=$(awk '/^sluice_cache_fills_total\{.*result="stored"/ { s += $2 } END { printf "%.0f", s }' <<<"$metrics")
evicted=$(awk '/^sluice_cache_evictions_total\{.*reason="size"/ { s += $2 } END { printf "%.0f", s }' <<<"$metrics")
sent=$(grep -o '"requests": *[0-9]*' "$tmp/bench.json" | head -n 1 | grep -o '[0-9]*$' || echo "?")
mem_kib=$(numfmt --from=iec-i --to-unit=1024 "${MEMORY}" 2>/dev/null || echo 0)

echo "keys sent:        $sent distinct URLs (KEYS=$KEYS), cache.memory $MEMORY, GOMEMLIMIT ${GOMEMLIMIT:-unset}"
echo "RSS before:       $(mib "$rss0") MiB"
echo "RSS peak (VmHWM): $(mib "$hwm") MiB (sampled peak $(mib "$peak") MiB)"
echo "RSS at the end:   $(mib "$rss1") MiB"
echo "L1 stored bytes:  $(mib $((stored / 1024))) MiB (sluice_cache_stored_bytes); $fills responses stored, $evicted evicted for size"
if ((mem_kib > 0)); then
	echo "peak over memory: $(mib $((hwm - mem_kib))) MiB ($(awk -v h="$hwm" -v m="$mem_kib" 'BEGIN { printf "%.2f", h / m }')x memory)"
fi
