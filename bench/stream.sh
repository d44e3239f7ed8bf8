#!/usr/bin/env bash
# bench/stream.sh: what large downloads cost the gateway (README "Streaming").
#
#   bash bench/stream.sh
#   N=10 SIZE=20MiB bash bench/stream.sh       # lighter
#   SLUICE_BIN=/tmp/sluice-base bash bench/stream.sh
#
# One `sluice origin` and one `sluice run` in front of it, on loopback. Three
# measurements:
#   (a) N concurrent SIZE downloads (curl), repeated for the whole window,
#       beside small GETs through the gateway at RATE req/s (`sluice bench`,
#       open loop): the gateway's RSS growth (VmRSS sampled every 100 ms, and
#       VmHWM) and the small GETs' p99; once with the downloads through the
#       gateway, once straight from the origin (the small GETs always go
#       through the gateway).
#   (b) ROUNDS rounds of N concurrent downloads through the gateway: its RSS
#       after each, against before the first.
#   (c) one ONE_SIZE download, ONE_ROUNDS alternating rounds through the
#       gateway and direct (nothing pinned; PIN=1: the gateway on core 1, the
#       origin and curl on core 0): curl's average speed, median of the
#       rounds' ratios.
# Targets (issue 10): growth < 32 MiB, rounds leave RSS where it started,
# p99 within 2x of direct, one download >= 0.9x direct.
#
# Environment (defaults in brackets):
#   N [20]  SIZE [50MiB]  RATE [3000]  CONNECTIONS [300]  DURATION [8s]
#   ROUNDS [6]  ONE_SIZE [1GiB]  ONE_ROUNDS [5]  PIN [0]  SLUICE_BIN  KEEP_TMP [0]
set -euo pipefail

N=${N:-20} SIZE=${SIZE:-50MiB} RATE=${RATE:-3000} CONNECTIONS=${CONNECTIONS:-300}
DURATION=${DURATION:-8s} ROUNDS=${ROUNDS:-6} ONE_SIZE=${ONE_SIZE:-1GiB} ONE_ROUNDS=${ONE_ROUNDS:-5} PIN=${PIN:-0}

script=stream.sh next_port=18600
# shellcheck source=bench/script.sh
source "$(dirname "$0")/script.sh"
command -v jq >/dev/null || die "needs jq"

take_port port_origin
take_port port_gw
take_port port_admin
"$sluice" origin -listen "127.0.0.1:$port_origin" >"$tmp/origin.log" 2>&1 &
origin_pid=$!
started+=($!)
wait_ok "http://127.0.0.1:$port_origin/healthz" "$!" "$tmp/origin.log"

cat >"$tmp/gateway.yaml" <<EOF
listen: 127.0.0.1:$port_gw
admin: {listen: 127.0.0.1:$port_admin}
server: {write_timeout: 30s}
log: {level: warn, format: text}
pools:
  origin:
    max_response_body: 4GiB
    backends: [{addr: 127.0.0.1:$port_origin}]
routes:
  - {name: orders, match: {path_prefix: /orders}, pool: origin}
  - {name: download, match: {path: /download}, pool: origin}
EOF
"$sluice" run -watch=false "$tmp/gateway.yaml" >"$tmp/gateway.log" 2>&1 &
gw=$!
started+=($gw)
wait_ok "http://127.0.0.1:$port_admin/readyz" "$gw" "$tmp/gateway.log"

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$gw/status"; }
hwm_kib() { awk '/^VmHWM/ {print $2}' "/proc/$gw/status"; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

# downloads BASE: N concurrent downloads of SIZE from BASE, once; fails if
# one comes back short.
downloads() {
	local base=$1 i pids=() bad=0
	for i in $(seq "$N"); do
		curl -s -o /dev/null --max-time 120 -w '%{size_download}\n' "$base/download?size=$SIZE" >"$tmp/dl-$i" &
		pids+=($!)
	done
	for i in "${!pids[@]}"; do wait "${pids[$i]}" || bad=$((bad + 1)); done
	((bad == 0)) || die "$bad downloads failed from $base"
}

# (a) ------------------------------------------------------------------
echo "(a) $N x $SIZE downloads beside small GETs at $RATE/s through the gateway"
printf '%-9s %-10s %-10s %-10s %-9s %-9s %s\n' downloads rounds rss_start rss_peak growth p99_ms errors
for via in direct gateway; do
	base="http://127.0.0.1:$port_origin"
	[[ $via == gateway ]] && base="http://127.0.0.1:$port_gw"
	"$sluice" bench -rate "$RATE" -c "$CONNECTIONS" -warmup 1s -duration "$DURATION" -max-lag 1h \
		-max-error-rate 1 -o json "http://127.0.0.1:$port_gw/orders/42" >"$tmp/bench-$via.json" 2>"$tmp/bench-$via.log" &
	bench=$!
	started+=($bench)
	sleep 1 # the warm-up
	start=$(rss_kib) peak=$start rounds=0
	(while kill -0 "$bench" 2>/dev/null; do downloads "$base" || exit 1; echo round; done >"$tmp/rounds-$via") &
	loop=$!
	started+=($loop)
	while kill -0 "$bench" 2>/dev/null; do
		r=$(rss_kib)
		((r > peak)) && peak=$r
		sleep 0.1
	done
	wait "$loop" || die "downloads failed during (a) via $via"
	rounds=$(wc -l <"$tmp/rounds-$via")
	jq -r --arg via "$via" --arg rounds "$rounds" --arg s "$(mib "$start")" --arg p "$(mib "$peak")" \
		--arg g "$(mib $((peak - start)))" \
		'[$via, $rounds, $s, $p, $g, (.latency.p99_ms|tostring), (.errors_total|tostring)] | @tsv' "$tmp/bench-$via.json" |
		awk -F'\t' '{ printf "%-9s %-10s %-10s %-10s %-9s %-9s %s\n", $1, $2, $3 " MiB", $4 " MiB", $5 " MiB", $6, $7 }'
done
echo "gateway VmHWM so far: $(mib "$(hwm_kib)") MiB"

# (b) ------------------------------------------------------------------
echo
echo "(b) $ROUNDS rounds of $N x $SIZE through the gateway"
before=$(rss_kib)
printf 'before   RSS %s MiB\n' "$(mib "$before")"
for r in $(seq "$ROUNDS"); do
	downloads "http://127.0.0.1:$port_gw"
	printf 'round %-2s RSS %s MiB\n' "$r" "$(mib "$(rss_kib)")"
done
after=$(rss_kib)
printf 'end - start: %s MiB; VmHWM %s MiB\n' "$(mib $((after - before)))" "$(mib "$(hwm_kib)")"

# (c) ------------------------------------------------------------------
# Rounds alternate direct and gateway; the ratio is the median of the
# rounds' ratios. By default nothing is pinned: both ways get the whole
# machine, as a client of either would. PIN=1 (two cores or more) gives the
# gateway core 1 to itself and the origin and curl core 0, as
# bench/compare.sh pins a proxy; on loopback that halves a single stream's
# speed for any proxy (nginx with proxy_buffering on or off included), since
# each byte then crosses the loopback twice with half the cores for the
# origin and curl.
echo
pin=()
if [[ $PIN == 1 ]] && (($(nproc) >= 2)); then
	taskset -a -p -c 1 "$gw" >/dev/null
	taskset -a -p -c 0 "$origin_pid" >/dev/null
	pin=(taskset -c 0)
	echo "(c) one $ONE_SIZE download, $ONE_ROUNDS alternating rounds (MB/s); gateway on cpu 1, origin and curl on cpu 0"
else
	echo "(c) one $ONE_SIZE download, $ONE_ROUNDS alternating rounds (MB/s); nothing pinned"
fi
speed() { "${pin[@]}" curl -s -o /dev/null --max-time 120 -w '%{speed_download}' "$1"; }
ratios=()
for r in $(seq "$ONE_ROUNDS"); do
	d=$(speed "http://127.0.0.1:$port_origin/download?size=$ONE_SIZE")
	g=$(speed "http://127.0.0.1:$port_gw/download?size=$ONE_SIZE")
	ratios+=("$(awk -v d="$d" -v g="$g" 'BEGIN { printf "%.3f", g / d }')")
	awk -v r="$r" -v d="$d" -v g="$g" 'BEGIN { printf "round %d: direct %6.0f MB/s, gateway %6.0f MB/s (%.2fx)\n", r, d / 1e6, g / 1e6, g / d }'
done
printf '%s\n' "${ratios[@]}" | sort -n | awk '{ a[NR] = $1 } END {
	m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
	printf "gateway / direct: median %.2fx (%.2f-%.2f)\n", m, a[1], a[NR] }'
