#!/bin/sh
# Fails if a process of this test run is still alive: scripts/run-tests exports a marker,
# BI_TEST_RUN, that every process it starts inherits (services daemonized with setsid
# included), so a service a test forgot to stop is found by its environment. Also a libvirt
# domain left by boot-test (libvirtd starts guests with a clean environment: found by name).
# Each leftover is listed, then stopped by its PID (TERM, then KILL). libvirtd and virtlogd
# are not leftovers: boot-test starts them when the host has none running, as host daemons
# that outlive it by design (README, boot-test).
# Usage: tests/harness/leftovers.sh MARKER KEEP_PID   (KEEP_PID and its ancestors are the runner)
set -u
marker=$1 keep=$2
# shellcheck source=tests/harness/pidfile.sh
. "$(dirname "$0")/pidfile.sh"

# The runner's own chain (this script, run-tests, its callers) is not a leftover.
ancestors=" $$ "
p=$keep
while [ -n "$p" ] && [ "$p" -gt 1 ]; do
  ancestors="$ancestors$p "
  p=$(awk '/^PPid:/ {print $2}' "/proc/$p/status" 2>/dev/null)
done

found=""
for d in /proc/[0-9]*; do
  pid=${d#/proc/}
  case $ancestors in *" $pid "*) continue ;; esac
  case $(cat "$d/comm" 2>/dev/null) in libvirtd | virtlogd) continue ;; esac
  if { tr '\0' '\n' <"$d/environ"; } 2>/dev/null | grep -qx "BI_TEST_RUN=$marker"; then
    found="$found $pid"
  fi
done

status=0
if [ -n "$found" ]; then
  echo "leftovers: processes of this test run still alive:" >&2
  # shellcheck disable=SC2086
  ps -o pid=,ppid=,etimes=,args= -p "$(echo $found | tr ' ' ',')" >&2 || true
  # shellcheck disable=SC2086
  kill -TERM $found 2>/dev/null
  for pid in $found; do
    i=0
    while pid_alive "$pid" && [ $i -lt 40 ]; do sleep 0.25; i=$((i + 1)); done
    pid_alive "$pid" && kill -KILL "$pid" 2>/dev/null
  done
  status=1
fi

if command -v virsh >/dev/null 2>&1 && [ -S /run/libvirt/libvirt-sock ]; then
  domains=$(timeout 30 virsh -c qemu:///system list --all --name 2>/dev/null | grep '^build-image-boot-' || true)
  for dom in $domains; do
    echo "leftovers: libvirt domain $dom still defined; destroying it" >&2
    timeout 30 virsh -c qemu:///system destroy "$dom" >/dev/null 2>&1 || true
    timeout 30 virsh -c qemu:///system undefine "$dom" >/dev/null 2>&1 || true
    status=1
  done
fi
[ "$status" -eq 0 ] && echo "leftovers: none (no process of run $marker, no boot-test domain)"
exit "$status"
