#!/bin/bash
# A flat apt repository on loopback for boot-test guests (which reach no Debian mirror),
# built from the builder's package cache: the .debs that full-mode system layers keep in
# <cache>/layers/system-*/content/var/cache/apt/archives/, plus extra .debs (the
# cartridge-agent package).
#
#   package-repo.sh start DIR PORT CACHE_DIR [EXTRA.deb...]  # serves DIR/repo on 127.0.0.1:PORT
#   package-repo.sh stop DIR
#
# Guest source line: deb [trusted=yes] http://10.0.2.102/ ./ (guestfwd to PORT).
# Fails when the cache has no .debs (build a full image first).
set -u

die() { echo "package-repo: $*" >&2; exit 1; }

cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || die "usage: $0 start DIR PORT CACHE_DIR [EXTRA.deb...] | stop DIR"

# shellcheck source=tests/harness/pidfile.sh
. "$(dirname "$0")/pidfile.sh"

stop() {
    stop_pidfile "$dir/http.pid" 5
    echo "package-repo: stopped"
}

start() {
    local port=${1:-} cache=${2:-} n f
    [[ "$port" =~ ^[0-9]+$ ]] || die "invalid PORT '$port'"
    [ -d "$cache/layers" ] || die "no layer cache at $cache"
    shift 2
    command -v dpkg-scanpackages >/dev/null || die "dpkg-scanpackages missing (apt-get install dpkg-dev)"
    mkdir -p "$dir" || die "cannot create $dir"
    dir=$(cd "$dir" && pwd)
    stop >/dev/null
    rm -rf "$dir/repo"
    mkdir -p "$dir/repo"
    # Newest version wins when layers hold several (same file name = same version).
    for f in "$cache"/layers/system-*/content/var/cache/apt/archives/*.deb "$@"; do
        [ -f "$f" ] || continue
        ln -f "$f" "$dir/repo/" 2>/dev/null || cp -f "$f" "$dir/repo/"
    done
    n=$(find "$dir/repo" -name '*.deb' | wc -l)
    [ "$n" -gt 0 ] || die "no .deb in $cache/layers/system-*/content/var/cache/apt/archives (build a full image first)"
    (cd "$dir/repo" && dpkg-scanpackages --multiversion . /dev/null 2>"$dir/scan.log" >Packages) || die "dpkg-scanpackages failed"
    gzip -9kf "$dir/repo/Packages"
    setsid /usr/bin/python3 -m http.server --bind 127.0.0.1 --directory "$dir/repo" "$port" \
        </dev/null >"$dir/http.log" 2>&1 &
    echo $! >"$dir/http.pid"
    local pid=$! i
    stop_with_owner "$dir/http.pid" bash "$0" stop "$dir"
    for i in $(seq 1 40); do
        if curl -fsS 2>/dev/null --noproxy '*' -o /dev/null "http://127.0.0.1:$port/Packages"; then
            echo "package-repo: $n packages on http://127.0.0.1:$port/ (pid $pid, dir $dir/repo)"
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || { cat "$dir/http.log" >&2; rm -f "$dir/http.pid"; die "http.server exited"; }
        sleep 0.25
    done
    stop >/dev/null
    die "http.server did not answer on port $port"
}

case $cmd in
start) shift 2; start "$@" ;;
stop) stop ;;
*) die "usage: $0 start DIR PORT CACHE_DIR [EXTRA.deb...] | stop DIR" ;;
esac
