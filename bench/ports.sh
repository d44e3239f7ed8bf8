# Sourced by the bench scripts. take_port VAR sets VAR to a TCP port on
# 127.0.0.1 that nothing listens on and that the script has not handed out
# yet, searching upward from $next_port (set it before the first call). A
# variable, not stdout: $(...) would run in a subshell and lose next_port.
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
