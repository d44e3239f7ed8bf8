# Sourced by bench/shutdown.sh, bench/stream.sh and bench/cache_rss.sh: what
# each needs before it measures anything. Set `script` (the name errors
# carry) and `next_port` (where take_port starts) before sourcing it.
#
#   die MSG...            print "SCRIPT: MSG" to stderr and exit 1
#   $tmp                  a scratch directory, removed on exit unless
#                         KEEP_TMP=1
#   started+=(PID)        processes stopped (SIGKILL) on exit
#   $sluice               SLUICE_BIN, or a build of this checkout in $tmp
#   wait_ok URL PID LOG   wait until URL answers 200 while PID runs; after
#                         ~15 s, print LOG and die
#   take_port VAR         a free loopback port (bench/ports.sh)

die() {
	echo "$script: $*" >&2
	exit 1
}
command -v curl >/dev/null || die "needs curl"

KEEP_TMP=${KEEP_TMP:-0}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/sluice-${script%.sh}.XXXXXX")
started=()
cleanup() {
	local pid
	trap - EXIT INT TERM
	for pid in "${started[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
	for pid in "${started[@]}"; do wait "$pid" 2>/dev/null || true; done
	if [[ $KEEP_TMP == 1 ]]; then echo "scratch directory kept: $tmp" >&2; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

sluice=${SLUICE_BIN:-}
if [[ -z $sluice ]]; then
	sluice=$tmp/sluice
	(cd "$(dirname "${BASH_SOURCE[0]}")/.." && go build -o "$sluice" ./cmd/sluice) || die "go build failed"
fi

wait_ok() {
	local url=$1 pid=$2 log=$3
	for _ in $(seq 150); do
		kill -0 "$pid" 2>/dev/null || break
		[[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$url" || true) == 200 ]] && return 0
		sleep 0.1
	done
	cat "$log" >&2 || true
	die "no 200 from $url"
}

# shellcheck source=bench/ports.sh
source "$(dirname "${BASH_SOURCE[0]}")/ports.sh"
