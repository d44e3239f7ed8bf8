#!/usr/bin/env bash
# bench/shutdown.sh: how many requests a rolling deploy's SIGTERM costs.
#
#   bash bench/shutdown.sh                          # 3 runs, this checkout
#   DELAY=5s bash bench/shutdown.sh                 # with server.shutdown_delay
#   SLUICE_BIN=/tmp/sluice-base bash bench/shutdown.sh   # another build
#
# Each run starts one `sluice origin` and `sluice run` in front of it, loads
# the gateway with `sluice bench` in the open loop (RATE req/s over
# CONNECTIONS keep-alive connections), sends the gateway SIGTERM TERM_AT into
# the measured window, and reads the bench's JSON report. It prints, per run:
#   failed     requests sent on a connection that then broke: reset, EOF
#              without a response, timeout, or a 5xx (what a client sees as a
#              failure of a request it made)
#   never_sent requests whose connection could not be opened, because the
#              gateway had stopped listening or was gone (a client behind a
#              load balancer would have been sent elsewhere)
#   exit       seconds from SIGTERM to the gateway's exit
# The bench keeps trying until its duration ends, so never_sent grows with
# the time left after the gateway exits; failed is the number to compare.
# Only loopback is touched; every process it starts is stopped on exit.
#
# Measured on a shared 2-core machine (defaults, 3 runs each): before
# server.shutdown_delay existed (commit 2a5f382) 21, 32 and 479 failed, all
# resets or EOFs on idle connections closed as the drain began; after, 0, 0
# and 0; with DELAY=5s DURATION=12s, 3, 0 and 0: the bench has no load
# balancer to move it elsewhere, so it reconnects to the gateway through the
# whole delay and a connection still in the listener's accept queue when it
# closes is reset.
#
# Environment (defaults in brackets):
#   RUNS [3]  RATE [3000]  CONNECTIONS [600]  DURATION [8s]  TERM_AT [3s]
#   DELAY []      server.shutdown_delay; empty leaves the key out (a build
#                 from before the key existed refuses it)
#   DRAIN [30s]   server.drain_timeout
#   SLUICE_BIN    use this binary instead of building one
#   KEEP_TMP [0]  1: keep the scratch directory (configs, JSON, logs)
set -euo pipefail

RUNS=${RUNS:-3} RATE=${RATE:-3000} CONNECTIONS=${CONNECTIONS:-600}
DURATION=${DURATION:-8s} TERM_AT=${TERM_AT:-3s} DELAY=${DELAY:-} DRAIN=${DRAIN:-30s}

script=shutdown.sh next_port=18400
# shellcheck source=bench/script.sh
source "$(dirname "$0")/script.sh"
command -v jq >/dev/null || die "needs jq"

take_port port_origin
"$sluice" origin -listen "127.0.0.1:$port_origin" >"$tmp/origin.log" 2>&1 &
started+=($!)
wait_ok "http://127.0.0.1:$port_origin/healthz" "$!" "$tmp/origin.log"

printf '%-4s %-8s %-10s %-7s %-7s %-8s %-6s %s\n' run failed never_sent other timeout status5xx exit served
for run in $(seq "$RUNS"); do
	take_port port_gw
	take_port port_admin
	cfg=$tmp/gateway-$run.yaml
	{
		echo "listen: 127.0.0.1:$port_gw"
		echo "admin: {listen: 127.0.0.1:$port_admin}"
		echo "server:"
		echo "  drain_timeout: $DRAIN"
		[[ -z $DELAY ]] || echo "  shutdown_delay: $DELAY"
		echo "log: {level: warn, format: text}"
		echo "pools:"
		echo "  orders:"
		echo "    backends: [{addr: 127.0.0.1:$port_origin}]"
		echo "routes:"
		echo "  - {name: orders, match: {path_prefix: /orders}, pool: orders}"
	} >"$cfg"
	env -u SLUICE_BIN "$sluice" run -watch=false "$cfg" >"$tmp/gateway-$run.log" 2>&1 &
	gw=$!
	started+=($gw)
	wait_ok "http://127.0.0.1:$port_admin/readyz" "$gw" "$tmp/gateway-$run.log"

	"$sluice" bench -rate "$RATE" -c "$CONNECTIONS" -warmup 1s -duration "$DURATION" \
		-max-error-rate 1 -max-lag 1h -o json "http://127.0.0.1:$port_gw/orders/42" \
		>"$tmp/bench-$run.json" 2>"$tmp/bench-$run.log" &
	bench=$!
	started+=($bench)
	sleep 1                       # the warm-up
	sleep "${TERM_AT%s}"          # into the measured window
	kill -TERM "$gw"
	t0=$(date +%s.%N)
	wait "$gw" || true
	t1=$(date +%s.%N)
	wait "$bench" || true
	jq -r --arg run "$run" --arg exit "$(printf '%.2f' "$(echo "$t1 - $t0" | bc)")" '
		[$run, (.errors.other + .errors.timeout + .errors.status_5xx), .errors.connect,
		 .errors.other, .errors.timeout, .errors.status_5xx, $exit,
		 ((.status["200"] // 0) | tostring)] | @tsv' "$tmp/bench-$run.json" |
		awk -F'\t' '{ printf "%-4s %-8s %-10s %-7s %-7s %-8s %-6s %s\n", $1, $2, $3, $4, $5, $6, $7, $8 }'
done
