# shellcheck shell=bash
# Sourced by the harness scripts. stop_pidfile PIDFILE SECONDS: stops the process whose PID
# PIDFILE holds (TERM, then KILL after SECONDS) and removes PIDFILE; nothing to do without one.
stop_pidfile() {
    local pidfile=$1 seconds=$2 pid _
    [ -f "$pidfile" ] || return 0
    pid=$(cat "$pidfile")
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill "$pid" 2>/dev/null
        for _ in $(seq 1 $((seconds * 4))); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.25
        done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    fi
    rm -f "$pidfile"
}
