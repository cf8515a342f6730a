# shellcheck shell=bash
# Sourced by the harness scripts. stop_pidfile PIDFILE SECONDS: stops the process whose PID
# PIDFILE holds (TERM, then KILL after SECONDS) and removes PIDFILE; nothing to do without one.
# pid_alive PID: running, not a zombie. Services started with setsid are orphans whose exit
# PID 1 may not reap soon (here it is not init), and kill -0 succeeds on a zombie.
pid_alive() {
    [ -r "/proc/$1/stat" ] && [ "$(sed 's/^.*) \(.\).*/\1/' "/proc/$1/stat" 2>/dev/null)" != Z ]
}

stop_pidfile() {
    local pidfile=$1 seconds=$2 pid _
    [ -f "$pidfile" ] || return 0
    pid=$(cat "$pidfile")
    if [ -n "$pid" ] && pid_alive "$pid"; then
        kill "$pid" 2>/dev/null
        for _ in $(seq 1 $((seconds * 4))); do
            pid_alive "$pid" || break
            sleep 0.25
        done
        pid_alive "$pid" && kill -KILL "$pid" 2>/dev/null
    fi
    rm -f "$pidfile"
}

# stop_with_owner PIDFILE STOP_COMMAND...: a watcher, in its own session, that runs
# STOP_COMMAND when the harness's owner dies before the service is stopped: the test that
# started it, even if ctest killed it with SIGKILL (no trap runs then). The owner is the
# process that ran the harness's start command ($BI_HARNESS_OWNER, else the script's parent).
# The watcher ends by itself once PIDFILE is gone (the service was stopped normally).
stop_with_owner() {
    _pidfile=$1
    shift
    _owner=${BI_HARNESS_OWNER:-$PPID}
    # A one-second poll: a watchdog's reaction time, not a test's wait.
    # shellcheck disable=SC2016  # expanded by the watcher's shell
    setsid sh -c '
        owner=$1 pidfile=$2
        shift 2
        alive() { [ -r "/proc/$1/stat" ] && [ "$(sed "s/^.*) \(.\).*/\1/" "/proc/$1/stat" 2>/dev/null)" != Z ]; }
        while [ -f "$pidfile" ] && alive "$owner"; do sleep 1; done
        [ -f "$pidfile" ] && exec "$@"
        exit 0' sh "$_owner" "$_pidfile" "$@" </dev/null >/dev/null 2>&1 &
}
