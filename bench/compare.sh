#!/usr/bin/env bash
# bench/compare.sh: Sluice against nginx and HAProxy, on the same machine,
# the same origin and the same load generator.
#
#   bash bench/compare.sh                 # 3 rounds of 10s per target, ~3 min
#   ROUNDS=5 DURATION=20s bash bench/compare.sh
#
# What it does:
#   1. installs nginx and HAProxy from Debian if they are missing (as root),
#      builds `sluice` from this repo into a scratch directory;
#   2. starts one `sluice origin` and, in front of it, Sluice (default
#      settings: routing, metrics, health checks), nginx (1 worker) and
#      HAProxy (1 thread), all on 127.0.0.1 ports found free with `ss`;
#   3. on a machine with 2 or more cores, pins the system under test (SUT) to
#      core 1 and the generator and origin to core 0 (the rest, if any), and
#      gives Sluice GOMAXPROCS=1, so every proxy gets the same single core;
#   4. runs `sluice bench` (closed loop) against every target, interleaved,
#      ROUNDS times, rotating the order each round so no target always runs
#      first or last; before each measured run a separate warm-up run;
#   5. reads the SUT's CPU time (utime+stime of every process of the SUT, from
#      /proc/PID/stat) before and after each measured run: CPU per request is
#      steadier than throughput on a noisy shared machine, because it does not
#      depend on how much of its core the SUT was given;
#   6. prints machine info, the per-round raw lines and a markdown table of
#      medians with ratios to nginx.
# Only loopback is touched. Every process it starts is stopped on exit.
#
# Environment (defaults in brackets):
#   ROUNDS [3]  DURATION [10s]  CONNECTIONS [64]  WARMUP [2s]
#   TARGETS ["direct nginx haproxy sluice"]  which targets to run
#   URL_PATH [/orders/42]   request path (300-byte JSON from the origin)
#   RATE [0]                0: closed loop (each target as fast as it goes).
#                           N: open loop at N req/s for every target, so CPU
#                           per request is compared at the same load (pick N
#                           below the slowest target's closed-loop rate)
#   SLUICE_BIN              use this binary instead of building one
#   PROFILE [0]             1: after the rounds, one more Sluice run under
#                           `perf record -g` and its top entries (needs perf)
#   KEEP_TMP [0]            1: keep the scratch directory (configs, JSON, logs)
#
# Fairness (what each does per request that the others do not):
#   - All three proxies: parse the request, pick the one upstream, strip
#     hop-by-hop headers both ways, set X-Forwarded-For (replacing any client
#     value: Sluice trusts no proxy by default), X-Forwarded-Proto,
#     X-Forwarded-Host, Via and X-Request-ID upstream, echo X-Request-ID to the
#     client, and reuse pooled keep-alive upstream connections. nginx and
#     HAProxy are told to add those headers so the work is comparable.
#   - Sluice only: path normalisation and its safety checks, a route table
#     match, Prometheus counters and latency histogram per route, atomic
#     counters per backend, an idle-connection check (one non-blocking
#     recvfrom) before reusing an upstream connection. Its admin listener
#     (metrics) is on.
#   - Sluice and HAProxy: an active health check of the origin on /healthz
#     every second. nginx (open source) has none; one probe a second is noise.
#   - nginx only: response buffering (its default; the 300-byte body fits the
#     first buffer, so no temp file).
#   - HAProxy: http-reuse always (see bench/peers/haproxy.cfg.tmpl for why).
#   - Access logs are off everywhere (Sluice's default).
# The "direct" row is the generator against the origin with no proxy: the
# ceiling of this set-up. Its CPU column is the origin's own CPU per request.
set -euo pipefail

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-64}
WARMUP=${WARMUP:-2s}
TARGETS=${TARGETS:-"direct nginx haproxy sluice"}
URL_PATH=${URL_PATH:-/orders/42}
RATE=${RATE:-0}
PROFILE=${PROFILE:-0}
KEEP_TMP=${KEEP_TMP:-0}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
peers=$here/peers

log() { printf '%s\n' "$*" >&2; }
die() { log "compare.sh: $*"; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/sluice-compare.XXXXXX")
started=() # pids of every process this script started, stopped on exit

cleanup() {
	local pid
	trap - EXIT INT TERM
	for pid in "${started[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in "${started[@]}"; do
		# Wait at most ~5s per process, then make sure.
		for _ in $(seq 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	if [[ $KEEP_TMP == 1 ]]; then
		log "scratch directory kept: $tmp"
	else
		rm -rf "$tmp"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- tools ----

# apt_install installs Debian packages, waiting for another apt or dpkg to
# release its lock (DPkg::Lock::Timeout) and retrying a few times anyway.
# policy-rc.d stops the nginx package from starting a server on 0.0.0.0:80
# while it is installed; it is removed afterwards if this script made it.
apt_install() {
	[[ $(id -u) == 0 ]] || die "need root to install: $*"
	local policy=/usr/sbin/policy-rc.d made_policy=0 try
	if [[ ! -e $policy ]]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && made_policy=1
	fi
	for try in 1 2 3 4 5 6; do
		if apt-get -o DPkg::Lock::Timeout=120 update -q >"$tmp/apt.log" 2>&1 &&
			DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=120 \
				install -y -q "$@" >>"$tmp/apt.log" 2>&1; then
			[[ $made_policy == 1 ]] && rm -f "$policy"
			return 0
		fi
		log "apt-get failed (try $try), retrying in 10s: $(tail -n 1 "$tmp/apt.log")"
		sleep 10
	done
	[[ $made_policy == 1 ]] && rm -f "$policy"
	cat "$tmp/apt.log" >&2
	die "could not install $*"
}

need=()
command -v nginx >/dev/null || need+=(nginx)
command -v haproxy >/dev/null || need+=(haproxy)
command -v python3 >/dev/null || need+=(python3)
command -v jq >/dev/null || need+=(jq)
command -v ss >/dev/null || need+=(iproute2)
command -v taskset >/dev/null || need+=(util-linux)
command -v curl >/dev/null || need+=(curl)
if ((${#need[@]})); then
	log "installing ${need[*]} ..."
	apt_install "${need[@]}"
fi

if [[ -n ${SLUICE_BIN:-} ]]; then
	cp "$SLUICE_BIN" "$tmp/sluice"
else
	log "building sluice ..."
	(cd "$root" && go build -o "$tmp/sluice" ./cmd/sluice) || die "go build ./cmd/sluice failed"
fi
sluice=$tmp/sluice
bench_help=$("$sluice" bench -h 2>&1 || true)
for flag in -url -connections -duration -warmup -o; do
	grep -q -- "^ *$flag " <<<"$bench_help" || die "sluice bench has no $flag flag:
$bench_help"
done

# ----------------------------------------------------------- cores, ports ----

ncpu=$(nproc)
if ((ncpu >= 2)); then
	sut_cpus=1
	load_cpus=0
	((ncpu > 2)) && load_cpus="0,2-$((ncpu - 1))"
	sut_pin=(taskset -c "$sut_cpus")
	load_pin=(taskset -c "$load_cpus")
else
	log "warning: 1 core: nothing is pinned; generator, origin and proxy share it"
	sut_cpus=all load_cpus=all
	sut_pin=() load_pin=()
fi

# take_port VAR sets VAR to a TCP port on 127.0.0.1 that nothing listens on
# and that this script has not handed out yet, searching upward from
# $next_port. (A variable, not stdout: $(...) would lose next_port.)
next_port=18100
take_port() {
	local p
	for ((p = next_port; p < 28000; p++)); do
		if [[ -z $(ss -Hltn "sport = :$p") ]]; then
			next_port=$((p + 1))
			printf -v "$1" '%s' "$p"
			return 0
		fi
	done
	die "no free port found"
}
take_port port_origin
take_port port_sluice
take_port port_admin
take_port port_nginx
take_port port_haproxy

# --------------------------------------------------------------- start ----

# start runs a command in the background with its output in $tmp/NAME.log
# and records its pid in started[] and in the variable pid_NAME.
start() {
	local name=$1
	shift
	"$@" >"$tmp/$name.log" 2>&1 &
	started+=($!)
	printf -v "pid_$name" '%s' "$!"
}

# wait_ok waits until URL answers 200 while process NAME still runs (a
# process that failed to bind must not pass because something else answers),
# or dies after ~15s showing its log.
wait_ok() {
	local url=$1 name=$2 pid_var=pid_$2
	for _ in $(seq 150); do
		kill -0 "${!pid_var}" 2>/dev/null || break
		[[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$url" || true) == 200 ]] &&
			kill -0 "${!pid_var}" 2>/dev/null && return 0
		sleep 0.1
	done
	cat "$tmp/$name.log" >&2 || true
	die "$name did not answer 200 on $url"
}

start origin "${load_pin[@]}" "$sluice" origin -listen "127.0.0.1:$port_origin"
wait_ok "http://127.0.0.1:$port_origin/healthz" origin

# Sluice with its defaults: one pool (health check on /healthz, defaults for
# interval/timeout/rise/fall), one route for every path, admin (metrics) on.
cat >"$tmp/gateway.yaml" <<EOF
listen: 127.0.0.1:$port_sluice
admin: {listen: 127.0.0.1:$port_admin}
pools:
  origin:
    backends:
      - {addr: 127.0.0.1:$port_origin}
    health_check: {path: /healthz}
routes:
  - name: all
    match: {path_prefix: /}
    pool: origin
EOF

render() { # render TEMPLATE OUT LISTEN_PORT
	sed -e "s#@TMP@#$tmp#g" -e "s#@ORIGIN@#127.0.0.1:$port_origin#g" \
		-e "s#@LISTEN@#127.0.0.1:$3#g" "$1" >"$2"
}
render "$peers/nginx.conf.tmpl" "$tmp/nginx.conf" "$port_nginx"
render "$peers/haproxy.cfg.tmpl" "$tmp/haproxy.cfg" "$port_haproxy"
nginx -t -q -c "$tmp/nginx.conf" || die "nginx rejects $tmp/nginx.conf"
haproxy -c -q -f "$tmp/haproxy.cfg" || die "haproxy rejects $tmp/haproxy.cfg"

declare -A url sut_pids
url[direct]=http://127.0.0.1:$port_origin$URL_PATH
url[sluice]=http://127.0.0.1:$port_sluice$URL_PATH
url[nginx]=http://127.0.0.1:$port_nginx$URL_PATH
url[haproxy]=http://127.0.0.1:$port_haproxy$URL_PATH
sut_pids[direct]=$pid_origin

for t in $TARGETS; do
	case $t in
	direct) ;;
	sluice)
		start sluice env GOMAXPROCS=1 "${sut_pin[@]}" "$sluice" run -c "$tmp/gateway.yaml" -watch=false
		wait_ok "${url[sluice]}" sluice
		sut_pids[sluice]=$pid_sluice
		;;
	nginx)
		start nginx "${sut_pin[@]}" nginx -c "$tmp/nginx.conf"
		wait_ok "${url[nginx]}" nginx
		# The master and its worker: the master does nothing per request,
		# but count it so nothing is hidden.
		sut_pids[nginx]="$pid_nginx $(pgrep -P "$pid_nginx" | tr '\n' ' ')"
		;;
	haproxy)
		start haproxy "${sut_pin[@]}" haproxy -db -f "$tmp/haproxy.cfg"
		wait_ok "${url[haproxy]}" haproxy
		sut_pids[haproxy]=$pid_haproxy
		;;
	*) die "unknown target $t (want direct, nginx, haproxy, sluice)" ;;
	esac
done

# ------------------------------------------------------------- measure ----

clk_tck=$(getconf CLK_TCK)

# secs prints a Go duration ("10s", "1m30s", "500ms") in seconds, for sleep.
secs() {
	python3 -c '
import re, sys
u = {"h": 3600, "m": 60, "s": 1, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
print(sum(float(n) * u[x] for n, x in re.findall(r"([0-9.]+)(ms|us|µs|ns|h|m|s)", sys.argv[1])))' "$1"
}

# cpu_ticks prints utime+stime, in clock ticks, summed over the given pids
# (each covers all of its threads). The comm field may hold spaces, so the
# fields are counted from the closing parenthesis.
cpu_ticks() {
	local pid sum=0 rest
	for pid in "$@"; do
		rest=$(<"/proc/$pid/stat") || die "process $pid is gone"
		rest=${rest##*) }
		read -r -a f <<<"$rest"
		sum=$((sum + f[11] + f[12]))
	done
	echo "$sum"
}

printf 'round\ttarget\trps\tp50_ms\tp99_ms\tcpu_us_per_req\torigin_cpu_us_per_req\trequests\terrors\tvalid\n' >"$tmp/raw.tsv"

# run_one ROUND TARGET: warm-up run, then the measured run between two CPU
# readings; appends one line to raw.tsv.
run_one() {
	local round=$1 t=$2 u=${url[$2]} out=$tmp/r$1-$2.json
	# shellcheck disable=SC2086 # sut_pids holds a space-separated pid list
	local pids=(${sut_pids[$t]})
	"${load_pin[@]}" "$sluice" bench -url "$u" -connections "$CONNECTIONS" \
		-rate "$RATE" -duration "$WARMUP" -warmup 0 -o json >/dev/null 2>&1 || true
	local c0 o0 c1 o1
	c0=$(cpu_ticks "${pids[@]}")
	o0=$(cpu_ticks "$pid_origin")
	"${load_pin[@]}" "$sluice" bench -url "$u" -connections "$CONNECTIONS" \
		-rate "$RATE" -duration "$DURATION" -warmup 0 -o json >"$out" 2>"$tmp/r$round-$t.err" || true
	c1=$(cpu_ticks "${pids[@]}")
	o1=$(cpu_ticks "$pid_origin")
	jq -r --arg r "$round" --arg t "$t" \
		--argjson cpu "$((c1 - c0))" --argjson ocpu "$((o1 - o0))" --argjson hz "$clk_tck" '
		def per(x): if .requests > 0 then (x / $hz * 1e6 / .requests) else 0 end;
		[$r, $t, .achieved_rate, .latency.p50_ms, .latency.p99_ms,
		 per($cpu), per($ocpu), .requests, .errors_total, .valid] | @tsv' \
		"$out" >>"$tmp/raw.tsv" || die "no JSON from sluice bench for $t: $(cat "$tmp/r$round-$t.err")"
}

# ---------------------------------------------------------- machine info ----

start_s=$SECONDS
echo "## Machine"
echo
echo '```'
echo "date:      $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "cpus:      $ncpu ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'))"
echo "kernel:    $(uname -sr)"
echo "go:        $(go version 2>/dev/null || echo 'n/a (SLUICE_BIN given)')"
echo "sluice:    $("$sluice" version 2>/dev/null || echo '?')"
echo "nginx:     $(nginx -v 2>&1 | sed 's/^nginx version: //')"
echo "haproxy:   $(haproxy -v 2>&1 | head -n 1)"
echo "pinning:   system under test on cpu $sut_cpus; generator and origin on cpu $load_cpus; Sluice GOMAXPROCS=1"
if [[ $RATE == 0 ]]; then mode="closed loop"; else mode="open loop at $RATE req/s"; fi
echo "load:      sluice bench $mode, $CONNECTIONS connections, GET $URL_PATH, $ROUNDS rounds x $DURATION (+ $WARMUP warm-up each)"
echo '```'
echo

# ---------------------------------------------------------------- rounds ----

read -r -a order <<<"$TARGETS"
n=${#order[@]}
for ((round = 1; round <= ROUNDS; round++)); do
	for ((i = 0; i < n; i++)); do
		t=${order[(i + round - 1) % n]} # rotate the order each round
		log "round $round/$ROUNDS: $t"
		run_one "$round" "$t"
	done
done

# --------------------------------------------------------------- summary ----

python3 - "$tmp/raw.tsv" "$TARGETS" "$ROUNDS" <<'PY'
import csv, statistics, sys

rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
targets = sys.argv[2].split()
print("## Raw rounds (CPU: µs of CPU time per request; origin: the origin's)")
print()
print("```")
print(f"{'round':>5}  {'target':<8} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'SUT CPU':>8} {'origin':>8} {'requests':>9} {'errors':>6}  valid")
for r in rows:
    print(f"{r['round']:>5}  {r['target']:<8} {float(r['rps']):9.0f} {float(r['p50_ms']):8.3f} {float(r['p99_ms']):8.3f} "
          f"{float(r['cpu_us_per_req']):8.1f} {float(r['origin_cpu_us_per_req']):8.1f} {r['requests']:>9} {r['errors']:>6}  {r['valid']}")
print("```")
print()
print(f"## Medians over {sys.argv[3]} rounds")
print()
med = {}
for t in targets:
    rs = [r for r in rows if r["target"] == t]
    if not rs:
        continue
    m = lambda k: statistics.median(float(r[k]) for r in rs)
    med[t] = dict(rps=m("rps"), p50=m("p50_ms"), p99=m("p99_ms"), cpu=m("cpu_us_per_req"),
                  invalid=sum(r["valid"] != "true" for r in rs), errors=sum(int(r["errors"]) for r in rs))
ref = med.get("nginx")
def ratio(a, b):
    return f"{a / b:.2f}x" if b else "n/a"
print("| target | req/s | p50 ms | p99 ms | SUT CPU µs/req | req/s vs nginx | CPU/req vs nginx |")
print("|---|---:|---:|---:|---:|---:|---:|")
for t, v in med.items():
    name = t + (" (origin's CPU)" if t == "direct" else "")
    r1 = ratio(v["rps"], ref["rps"]) if ref else "n/a"
    r2 = ratio(v["cpu"], ref["cpu"]) if ref else "n/a"
    print(f"| {name} | {v['rps']:.0f} | {v['p50']:.3f} | {v['p99']:.3f} | {v['cpu']:.1f} | {r1} | {r2} |")
bad = {t: v for t, v in med.items() if v["invalid"] or v["errors"]}
for t, v in bad.items():
    print(f"\nWARNING: {t}: {v['invalid']} invalid run(s), {v['errors']} errors in total: see the raw lines")
PY
echo
echo "wall time of the rounds: $((SECONDS - start_s))s"

# --------------------------------------------------------------- profile ----

if [[ $PROFILE == 1 && " $TARGETS " == *" sluice "* ]]; then
	echo
	echo "## perf profile of Sluice under the same load (${DURATION})"
	echo
	if ! command -v perf >/dev/null; then
		echo "perf is not installed (apt-get install linux-perf); no profile"
	else
		"${load_pin[@]}" "$sluice" bench -url "${url[sluice]}" -connections "$CONNECTIONS" \
			-rate "$RATE" -duration "$DURATION" -warmup "$WARMUP" -o json >"$tmp/perf-bench.json" 2>&1 &
		bench_pid=$!
		started+=("$bench_pid")
		sleep "$(secs "$WARMUP")"
		perf record -q -g -p "$pid_sluice" -o "$tmp/perf.data" -- sleep "$(secs "$DURATION")" >/dev/null 2>&1 || true
		wait "$bench_pid" || true
		echo '```'
		echo "self time, top 15:"
		# awk, not head: head would close the pipe early and pipefail would
		# turn perf's SIGPIPE into a failure of the script.
		perf report -i "$tmp/perf.data" --no-children -F overhead,sym --stdio -g none 2>/dev/null |
			awk '/^ +[0-9]/ && n++ < 15' || true
		echo
		echo "cumulative (children, self), top 15:"
		perf report -i "$tmp/perf.data" --children --sort sym --stdio -g none 2>/dev/null |
			awk '/^ +[0-9]/ && n++ < 15' || true
		echo '```'
	fi
fi
