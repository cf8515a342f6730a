#!/bin/bash
# A private Puppet master (Debian's puppetserver) on loopback, serving this repository's
# puppet/ as environment `production`, with autosign. Used by the generic-mode boot test.
#
#   puppet-master.sh start DIR PORT   # returns when the master is ready (bounded)
#   puppet-master.sh stop DIR         # stops it (by PID) and waits
#
# DIR holds everything (conf.d, puppet.conf, CA, code dir, logs, pid). The server
# certificate's names: localhost, puppet.test, puppet, IP:127.0.0.1. Heap 512 MB.
# Environment: PUPPET_MASTER_HEAP (default 512m), PUPPET_MASTER_READY_TIMEOUT (s, 420).
# See /work/shared/reference/services.md section 4.
set -u

die() { echo "puppet-master: $*" >&2; exit 1; }

cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || die "usage: $0 start DIR PORT | stop DIR"
repo_root=$(cd "$(dirname "$0")/../.." && pwd)

# shellcheck source=tests/harness/pidfile.sh
. "$(dirname "$0")/pidfile.sh"

stop() {
    stop_pidfile "$dir/run/master.pid" 30
    echo "puppet-master: stopped"
}

start() {
    local port=$1 heap=${PUPPET_MASTER_HEAP:-512m} limit=${PUPPET_MASTER_READY_TIMEOUT:-420}
    [[ "$port" =~ ^[0-9]+$ ]] || die "invalid PORT '$port'"
    command -v java >/dev/null || die "java missing (apt-get install puppetserver)"
    [ -f /usr/share/puppetserver/puppetserver.jar ] || die "puppetserver missing"
    mkdir -p "$dir"/{conf.d,etc,code/environments,var,run,log} || die "cannot create $dir"
    dir=$(cd "$dir" && pwd)
    stop >/dev/null

    local f
    for f in auth.conf ca.conf metrics.conf web-routes.conf; do
        cp /etc/puppet/puppetserver/conf.d/$f "$dir/conf.d/"
    done
    cat >"$dir/conf.d/webserver.conf" <<CONF
webserver: {
    client-auth: want
    ssl-host: 127.0.0.1
    ssl-port: $port
}
CONF
    cat >"$dir/conf.d/puppetserver.conf" <<CONF
jruby-puppet: {
    ruby-load-path: [/usr/lib/puppetserver/ruby/vendor_ruby]
    gem-home: $dir/var/jruby-gems
    gem-path: [\${jruby-puppet.gem-home}, "/usr/lib/puppetserver/vendored-jruby-gems"]
    server-conf-dir: $dir/etc
    server-code-dir: $dir/code
    server-var-dir: $dir/var
    server-run-dir: $dir/run
    server-log-dir: $dir/log
    max-active-instances: 1
}
http-client: {
}
profiler: {
}
dropsonde: {
    enabled: false
}
product: {
    check-for-updates: false
}
CONF
    cat >"$dir/conf.d/global.conf" <<CONF
global: {
    logging-config: $dir/logback.xml
}
CONF
    cat >"$dir/logback.xml" <<CONF
<configuration>
    <appender name="F1" class="ch.qos.logback.core.FileAppender">
        <file>$dir/log/puppetserver.log</file>
        <append>true</append>
        <encoder><pattern>%d{yyyy-MM-dd'T'HH:mm:ss.SSSXXX} %-5p [%t] [%c{2}] %m%n</pattern></encoder>
    </appender>
    <root level="info"><appender-ref ref="F1"/></root>
</configuration>
CONF
    cat >"$dir/etc/puppet.conf" <<CONF
[main]
certname = localhost
dns_alt_names = localhost,puppet.test,puppet,IP:127.0.0.1
ssldir = $dir/etc/ssl
[server]
cadir = $dir/etc/ca
autosign = true
CONF
    # Environment production = this repository's puppet/ (manifests/site.pp + modules/).
    rm -f "$dir/code/environments/production"
    ln -s "$repo_root/puppet" "$dir/code/environments/production"
    rm -f "$dir/run/restart"

    setsid java "-Xms$heap" "-Xmx$heap" -Djruby.logger.class=com.puppetlabs.jruby_utils.jruby.Slf4jLogger \
        -Djruby.lib=/usr/share/jruby/lib -jar /usr/share/puppetserver/puppetserver.jar \
        --config "$dir/conf.d" --bootstrap-config /etc/puppet/puppetserver/services.d \
        --restart-file "$dir/run/restart" </dev/null >"$dir/log/stdout.log" 2>&1 &
    echo $! >"$dir/run/master.pid"
    local pid=$! start=$SECONDS
    stop_with_owner "$dir/run/master.pid" bash "$0" stop "$dir"
    while [ "$(cat "$dir/run/restart" 2>/dev/null)" != 1 ]; do
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 20 "$dir/log/stdout.log" "$dir/log/puppetserver.log" >&2 2>/dev/null
            rm -f "$dir/run/master.pid"
            die "puppetserver exited while starting"
        fi
        if [ $((SECONDS - start)) -ge "$limit" ]; then
            stop >/dev/null
            die "not ready after ${limit}s"
        fi
        sleep 1
    done
    echo "puppet-master: ready on 127.0.0.1:$port after $((SECONDS - start))s (pid $pid, dir $dir)"
}

case $cmd in
start) start "${3:-}" ;;
stop) stop ;;
*) die "usage: $0 start DIR PORT | stop DIR" ;;
esac
