#!/bin/bash
# Tests of init-scripts/ (cartridge-init and lib/payload.sh) against a sandbox root.
# Usage: tests/init-scripts/run-tests.sh [CASE-NAME-SUBSTRING]
# Needs bash, curl and /usr/bin/python3 (standard library only); shellcheck if installed.
# Everything runs with CARTRIDGE_NO_SYSTEM=1 (no hostname, blkid, mount, systemctl,
# puppet) and talks only to a fake metadata server on 127.0.0.1. Exit status: 0 when
# every case passed. On failure the sandbox is kept and its path printed.
# shellcheck disable=SC2317  # cases and helpers are called indirectly
set -u -o pipefail
shopt -s lastpipe # as tests/harness/asserts.sh does; stated here for shellcheck

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
INIT=$REPO/init-scripts/sbin/cartridge-init
LIB=$REPO/init-scripts/lib
UNIT=$REPO/init-scripts/systemd/cartridge-init.service
SERVER=$HERE/metadata_server.py
PY=/usr/bin/python3
FILTER=${1:-}
# shellcheck source=tests/harness/asserts.sh
. "$REPO/tests/harness/asserts.sh"

SANDBOX=$(mktemp -d "${TMPDIR:-/tmp}/cartridge-init-tests.XXXXXX")
SERVER_PID=""
MD_URL=""
PWNED_GLOBAL=/tmp/pwned-cartridge-init-$$
DIGITS=123412345678
UIDN=$(id -u)   # files are root's when run as root (CI)

cleanup() {
    stop_server
    if [ "$FAILED" -eq 0 ]; then
        rm -rf "$SANDBOX"
    else
        echo "sandbox kept: $SANDBOX"
    fi
    rm -f "$PWNED_GLOBAL"
}
trap cleanup EXIT

# ------------------------------------------------------------------ framework

ROOT="" ELAPSED=0
CASE_NOTE=", output in its out.* files"

begin() {
    case_reset "$1"
    CASE_DIR=$SANDBOX/$CASE
    ROOT=$CASE_DIR/root
    MD_URL=""
    mkdir -p "$ROOT/etc/cartridge" "$ROOT/etc/puppet" "$CASE_DIR/cd/openstack/latest"
    printf '%s\n' 'SERVICE_NAME=php' 'CARTRIDGE_MODE=generic' 'PUPPET_SERVER=puppet.example.org' \
        'PUPPET_ENVIRONMENT=production' 'PORTS=80|443' >"$ROOT/etc/cartridge/cartridge.conf"
    printf '%s\n' '[main]' 'server = puppet.example.org' 'environment = production' >"$ROOT/etc/puppet/puppet.conf"
    unset CONFIG_DRIVE_DIR
    EXTRA_ENV=()
}
after_case() { stop_server; }

# run_init [NAME=VALUE...]: runs cartridge-init in a clean environment; output in $OUT.
run_init() {
    local n=1
    while [ -e "$CASE_DIR/out.$n" ]; do n=$((n + 1)); done
    OUT=$CASE_DIR/out.$n
    local start end
    start=$(date +%s%N)
    # A script that never gives up is caught here, not by the suite's timeout: the case
    # fails with exit 124 (a bound on the run, not a timing assertion).
    timeout --kill-after=5 "${RUN_INIT_BOUND:-120}" \
    env -i PATH="$PATH" HOME="$CASE_DIR" TMPDIR="$CASE_DIR" \
        CARTRIDGE_ROOT="$ROOT" CARTRIDGE_LIB="$LIB" CARTRIDGE_NO_SYSTEM=1 \
        CARTRIDGE_HOST_DIGITS="$DIGITS" METADATA_URL="${MD_URL:?}" \
        CARTRIDGE_HTTP_RETRY_SLEEP=0 CARTRIDGE_PUPPET_BACKOFF=0 \
        ${CONFIG_DRIVE_DIR:+CONFIG_DRIVE_DIR="$CONFIG_DRIVE_DIR"} \
        "${EXTRA_ENV[@]}" "$@" \
        "$INIT" >"$OUT" 2>&1 </dev/null
    RC=$?
    end=$(date +%s%N)
    ELAPSED=$(((end - start) / 1000000))
    [ "$RC" -ne 124 ] || fail "cartridge-init did not finish within ${RUN_INIT_BOUND:-120} s"
    sed 's/^/      | /' "$OUT" >"$OUT.indented"
}

# start_server ARGS...: the fake metadata service; sets MD_URL and SERVER_LOG.
start_server() {
    stop_server
    SERVER_LOG=$CASE_DIR/server.log
    : >"$SERVER_LOG"
    rm -f "$CASE_DIR/port"
    "$PY" "$SERVER" --port-file "$CASE_DIR/port" --log "$SERVER_LOG" "$@" \
        >"$CASE_DIR/server.out" 2>&1 &
    SERVER_PID=$!
    local i
    for ((i = 0; i < 100; i++)); do
        [ -s "$CASE_DIR/port" ] && break
        sleep 0.05
    done
    if [ ! -s "$CASE_DIR/port" ]; then
        fail "metadata server did not start: $(cat "$CASE_DIR/server.out")"
        MD_URL=http://127.0.0.1:$(closed_port)
        return 1
    fi
    MD_URL=http://127.0.0.1:$(cat "$CASE_DIR/port")
}

stop_server() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null
        wait "$SERVER_PID" 2>/dev/null
        SERVER_PID=""
    fi
}

# closed_port: a loopback port nobody listens on (bound then released).
closed_port() {
    "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

no_server() {
    stop_server
    SERVER_LOG=$CASE_DIR/server.log
    : >"$SERVER_LOG"
    MD_URL=http://127.0.0.1:$(closed_port)
}

# config_drive CONTENT: a fake config drive holding CONTENT (printf %s) as user_data.
config_drive() {
    printf '%s' "$1" >"$CASE_DIR/cd/openstack/latest/user_data"
    printf '{"uuid": "83679162-1378-4288-a2d4-70e13ec132aa", "name": "vm1"}\n' \
        >"$CASE_DIR/cd/openstack/latest/meta_data.json"
    CONFIG_DRIVE_DIR=$CASE_DIR/cd
}

# payload_file CONTENT: writes CONTENT to $CASE_DIR/user-data (for the server).
payload_file() { printf '%s' "$1" >"$CASE_DIR/user-data"; }

show_output_on_failure() { [ "$CASE_OK" = 1 ] || sed 's/^/      | /' "$OUT"; }

# The payload shipped with Stratos (stratos.md section 2), verbatim.
STRATOS_SAMPLE='APPLICATION_ID=single-cartridge-app,GROUP_NAME=null,SERVICE_NAME=tomcat,HOST_NAME=tomcat1.tomcat.stratos.org,MULTITENANT=false,TENANT_ID=-1234,TENANT_RANGE=*,CARTRIDGE_ALIAS=tomcat1,CLUSTER_ID=tomcat1.tomcat.domain,CARTRIDGE_KEY=U4OYk2Pnu09TK34x,DEPLOYMENT=default,REPO_URL=https://github.com/imesh/stratos-php-applications.git,PORTS=22,PROVIDER=apache,PUPPET_IP=192.168.30.90,PUPPET_HOSTNAME=puppet.stratostest.org,PUPPET_DNS_AVAILABLE=null,PUPPET_ENV=false,,,DEPENDENCY_CLUSTER_IDS=,EXPORT_METADATA_KEYS=,IMPORT_METADATA_KEYS=,TOKEN=eyJ…,MEMBER_ID=tomcat1.tomcat.domain54e2ebf4-ded5-4892-ada3-61a14a6c59ab,INSTANCE_ID=null,CLUSTER_INSTANCE_ID=single-cartridge-app-1,LB_CLUSTER_ID=null,NETWORK_PARTITION_ID=network-partition-1,PARTITION_ID=partition-1,INTERNAL=false,PRIMARY=false,MIN_COUNT=1'

stratos_params() {
    cat <<'EOF'
APPLICATION_ID=single-cartridge-app
GROUP_NAME=null
SERVICE_NAME=tomcat
HOST_NAME=tomcat1.tomcat.stratos.org
MULTITENANT=false
TENANT_ID=-1234
TENANT_RANGE=*
CARTRIDGE_ALIAS=tomcat1
CLUSTER_ID=tomcat1.tomcat.domain
CARTRIDGE_KEY=U4OYk2Pnu09TK34x
DEPLOYMENT=default
REPO_URL=https://github.com/imesh/stratos-php-applications.git
PORTS=22
PROVIDER=apache
PUPPET_IP=192.168.30.90
PUPPET_HOSTNAME=puppet.stratostest.org
PUPPET_DNS_AVAILABLE=null
PUPPET_ENV=false
DEPENDENCY_CLUSTER_IDS=
EXPORT_METADATA_KEYS=
IMPORT_METADATA_KEYS=
TOKEN=eyJ…
MEMBER_ID=tomcat1.tomcat.domain54e2ebf4-ded5-4892-ada3-61a14a6c59ab
INSTANCE_ID=null
CLUSTER_INSTANCE_ID=single-cartridge-app-1
LB_CLUSTER_ID=null
NETWORK_PARTITION_ID=network-partition-1
PARTITION_ID=partition-1
INTERNAL=false
PRIMARY=false
MIN_COUNT=1
EOF
}

# hosts_for FQDN [IP NAME]: the /etc/hosts cartridge-init writes on an empty root.
hosts_for() {
    printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n# BEGIN cartridge-init\n'
    printf '127.0.1.1\t%s %s\n' "$1" "${1%%.*}"
    [ $# -ge 3 ] && printf '%s\t%s\n' "$2" "$3"
    printf '# END cartridge-init\n'
}

PUPPET_LINE='cartridge-init: would run: puppet agent --onetime --no-daemonize --detailed-exitcodes --verbose --color=false --http_keepalive_timeout 0 --waitforcert 10 --maxwaitforcert 120 --no-usecacheonfailure'

# ------------------------------------------------------------------ cases

t_static_checks() {
    bash -n "$INIT" || fail "bash -n $INIT"
    bash -n "$LIB/payload.sh" || fail "bash -n payload.sh"
    bash -n "$HERE/run-tests.sh" || fail "bash -n run-tests.sh"
    [ -x "$INIT" ] || fail "$INIT is not executable"
    "$PY" -c 'import ast, sys; ast.parse(open(sys.argv[1]).read(), sys.argv[1])' "$SERVER" ||
        fail "python syntax of $SERVER"
    if command -v shellcheck >/dev/null; then
        (cd "$REPO" && shellcheck -x init-scripts/sbin/cartridge-init init-scripts/lib/payload.sh \
            tests/init-scripts/run-tests.sh) || fail "shellcheck"
    else
        echo "    (shellcheck not installed: skipped)"
    fi
    local d
    for d in 'Type=oneshot' 'RemainAfterExit=yes' 'ExecStart=/usr/sbin/cartridge-init' \
        'Wants=network-online.target' 'Before=cartridge-agent.service' \
        'WantedBy=multi-user.target' 'StandardOutput=journal+console' 'TimeoutStartSec=45min'; do
        grep -qxF "$d" "$UNIT" || fail "unit lacks $d"
    done
    grep -qE '^After=.*network-online\.target' "$UNIT" || fail "unit: After=network-online.target"
    grep -qE '^After=.*networking\.service' "$UNIT" || fail "unit: After=networking.service"
    grep -qE '^After=.*local-fs\.target' "$UNIT" || fail "unit: After=local-fs.target"
    if command -v systemd-analyze >/dev/null; then
        # ExecStart must exist for verify: point a copy of the unit at the script.
        sed "s#^ExecStart=.*#ExecStart=$INIT#; /^ConditionPathExists=/d" "$UNIT" >"$CASE_DIR/cartridge-init.service"
        systemd-analyze verify --man=no "$CASE_DIR/cartridge-init.service" >"$CASE_DIR/verify.out" 2>&1
        if grep -v -E 'cartridge-agent.service|networking.service|Failed to .*bus|not booted|Unit .* not found' \
            "$CASE_DIR/verify.out" | grep -q 'cartridge-init'; then
            fail "systemd-analyze verify: $(cat "$CASE_DIR/verify.out")"
        fi
    fi
}

t_stratos_sample_config_drive() {
    # The config drive comes first: the metadata service (which has another payload)
    # must not even be asked.
    payload_file 'SERVICE_NAME=wrong'
    start_server --ec2 v2 --openstack on --user-data "$CASE_DIR/user-data"
    config_drive "$STRATOS_SAMPLE"
    run_init
    assert_rc 0
    local fqdn=$DIGITS.default.tomcat.puppet.stratostest.org
    assert_out "cartridge-init: starting (generic mode)"
    assert_out "cartridge-init: payload from config-drive ($CASE_DIR/cd)"
    assert_out "cartridge-init: launch-params: 31 keys in /var/lib/cartridge/launch-params"
    assert_out "cartridge-init: instance-id 83679162-1378-4288-a2d4-70e13ec132aa"
    assert_out "cartridge-init: PUPPET_ENV=false is a DNS flag (Stratos swaps PUPPET_ENV and PUPPET_DNS_AVAILABLE): using it as PUPPET_DNS_AVAILABLE"
    assert_out "cartridge-init: would run: hostname $fqdn"
    assert_out "cartridge-init: hostname $fqdn"
    assert_out "cartridge-init: hosts: 192.168.30.90 puppet.stratostest.org"
    assert_out "cartridge-init: puppet.conf: server puppet.stratostest.org, environment production, certname $fqdn"
    assert_out "$PUPPET_LINE"
    refute_out_re 'eyJ|U4OYk2Pnu09TK34x'   # secrets are never printed
    ! grep -qE 'eyJ|U4OYk2Pnu09TK34x' "$ROOT/var/log/cartridge-init.log" || fail "secret in the log"
    stratos_params | assert_file "$ROOT/var/lib/cartridge/launch-params"
    stratos_params | assert_file "$ROOT/tmp/payload/launch-params"
    assert_mode "$ROOT/var/lib/cartridge/launch-params" "600 $UIDN"
    assert_mode "$ROOT/tmp/payload/launch-params" "600 $UIDN"
    assert_mode "$ROOT/tmp/payload" "700 $UIDN"
    printf '83679162-1378-4288-a2d4-70e13ec132aa' | assert_file "$ROOT/var/lib/cartridge/instance-id"
    printf '%s\n' "$fqdn" | assert_file "$ROOT/etc/hostname"
    printf '%s\n' "$fqdn" | assert_file "$ROOT/var/lib/cartridge/initialized"
    assert_mode "$ROOT/etc/hostname" "644 $UIDN"
    assert_mode "$ROOT/etc/hosts" "644 $UIDN"
    hosts_for "$fqdn" 192.168.30.90 puppet.stratostest.org | assert_file "$ROOT/etc/hosts"
    printf '%s\n' '[main]' 'server = puppet.stratostest.org' 'environment = production' \
        "certname = $fqdn" | assert_file "$ROOT/etc/puppet/puppet.conf"
    assert_present "$ROOT/var/lib/cartridge/puppet-done"
    [ ! -s "$SERVER_LOG" ] || fail "metadata service was asked although the config drive had a payload"
    ls "$ROOT"/var/lib/cartridge/.launch-params.* >/dev/null 2>&1 && fail "temporary file left behind"
    show_output_on_failure
}

t_ec2_imdsv2_required() {
    payload_file "$STRATOS_SAMPLE"
    start_server --ec2 v2-required --user-data "$CASE_DIR/user-data" --instance-id i-0abc123def4567890
    CONFIG_DRIVE_DIR=$CASE_DIR/no-such-drive
    run_init
    assert_rc 0
    assert_out "cartridge-init: config-drive: no $CASE_DIR/no-such-drive/openstack/latest/user_data"
    assert_out "cartridge-init: openstack-metadata: no user_data (HTTP 404)"
    assert_out "cartridge-init: payload from ec2-imds (IMDSv2, $MD_URL)"
    assert_out "cartridge-init: instance-id i-0abc123def4567890"
    stratos_params | assert_file "$ROOT/var/lib/cartridge/launch-params"
    printf 'i-0abc123def4567890' | assert_file "$ROOT/var/lib/cartridge/instance-id"
    grep -qxF 'PUT /latest/api/token token=none ttl=300' "$SERVER_LOG" || fail "no token PUT with a TTL"
    grep -qxF 'GET /latest/user-data token=valid ttl=-' "$SERVER_LOG" || fail "user-data not read with the token"
    grep -qxF 'GET /latest/meta-data/instance-id token=valid ttl=-' "$SERVER_LOG" || fail "instance-id not read with the token"
    show_output_on_failure
}

t_ec2_imdsv1_only() {
    payload_file 'SERVICE_NAME=php,PUPPET_HOSTNAME=puppet.test,PUPPET_IP=10.0.2.101'
    start_server --ec2 v1 --user-data "$CASE_DIR/user-data" --instance-id i-1
    run_init
    assert_rc 0
    assert_out "cartridge-init: config-drive: none (CARTRIDGE_NO_SYSTEM=1 and no CONFIG_DRIVE_DIR)"
    assert_out "cartridge-init: would run: udevadm settle -t 5"
    assert_out "cartridge-init: would run: blkid -L config-2"
    assert_out "cartridge-init: payload from ec2-imds (IMDSv1, $MD_URL)"
    assert_out "cartridge-init: hostname $DIGITS.default.php.puppet.test"
    printf '%s\n' 'SERVICE_NAME=php' 'PUPPET_HOSTNAME=puppet.test' 'PUPPET_IP=10.0.2.101' |
        assert_file "$ROOT/var/lib/cartridge/launch-params"
    grep -qxF 'GET /latest/user-data token=none ttl=-' "$SERVER_LOG" || fail "no IMDSv1 GET"
    hosts_for "$DIGITS.default.php.puppet.test" 10.0.2.101 puppet.test | assert_file "$ROOT/etc/hosts"
    show_output_on_failure
}

t_openstack_metadata() {
    payload_file "SERVICE_NAME=php,DEPLOYMENT=default,PUPPET_HOSTNAME=puppet.test,PUPPET_IP=10.0.2.101,PUPPET_ENV=false,PUPPET_DNS_AVAILABLE=null"
    start_server --ec2 v2 --openstack on --user-data "$CASE_DIR/user-data" --instance-id 5d7c1a34-0000-4000-8000-000000000001
    run_init
    assert_rc 0
    assert_out "cartridge-init: payload from openstack-metadata ($MD_URL)"
    assert_out "cartridge-init: instance-id 5d7c1a34-0000-4000-8000-000000000001"
    ! grep -qE '^[A-Z]+ /latest/' "$SERVER_LOG" || fail "EC2 paths asked although OpenStack answered"
    printf '%s\n' '[main]' 'server = puppet.test' 'environment = production' \
        "certname = $DIGITS.default.php.puppet.test" | assert_file "$ROOT/etc/puppet/puppet.conf"
    show_output_on_failure
}

t_swapped_puppet_fields() {
    # Stratos' bug: PUPPET_ENV carries the DNS flag, PUPPET_DNS_AVAILABLE the environment.
    config_drive 'SERVICE_NAME=php,PUPPET_IP=10.0.2.101,PUPPET_HOSTNAME=puppet.test,PUPPET_DNS_AVAILABLE=staging,PUPPET_ENV=true'
    no_server
    run_init
    assert_rc 0
    assert_out "cartridge-init: PUPPET_ENV=true is a DNS flag (Stratos swaps PUPPET_ENV and PUPPET_DNS_AVAILABLE): using it as PUPPET_DNS_AVAILABLE"
    assert_out "cartridge-init: PUPPET_DNS_AVAILABLE holds an environment name (Stratos swaps the two fields): using it as PUPPET_ENV"
    # DNS available: no hosts line for the master
    hosts_for "$DIGITS.default.php.puppet.test" | assert_file "$ROOT/etc/hosts"
    printf '%s\n' '[main]' 'server = puppet.test' 'environment = staging' \
        "certname = $DIGITS.default.php.puppet.test" | assert_file "$ROOT/etc/puppet/puppet.conf"
    show_output_on_failure
}

t_unswapped_puppet_fields() {
    config_drive 'SERVICE_NAME=php,PUPPET_IP=10.0.2.101,PUPPET_HOSTNAME=puppet.test,PUPPET_DNS_AVAILABLE=false,PUPPET_ENV=testing'
    no_server
    run_init
    assert_rc 0
    refute_out_re 'swaps'
    hosts_for "$DIGITS.default.php.puppet.test" 10.0.2.101 puppet.test | assert_file "$ROOT/etc/hosts"
    grep -qxF 'environment = testing' "$ROOT/etc/puppet/puppet.conf" || fail "environment not testing"
    show_output_on_failure
}

t_dns_available_true() {
    config_drive 'SERVICE_NAME=php,PUPPET_IP=10.0.2.101,PUPPET_HOSTNAME=puppet.test,PUPPET_DNS_AVAILABLE=TRUE,PUPPET_ENV=null'
    no_server
    run_init
    assert_rc 0
    hosts_for "$DIGITS.default.php.puppet.test" | assert_file "$ROOT/etc/hosts"
    show_output_on_failure
}

t_null_values() {
    # null everywhere: the hostname parts and the master come from cartridge.conf.
    config_drive 'SERVICE_NAME=null,DEPLOYMENT=null,PUPPET_IP=null,PUPPET_HOSTNAME=null,PUPPET_ENV=null,PUPPET_DNS_AVAILABLE=null,PORTS=null'
    no_server
    run_init
    assert_rc 0
    printf '%s\n' 'SERVICE_NAME=null' 'DEPLOYMENT=null' 'PUPPET_IP=null' 'PUPPET_HOSTNAME=null' \
        'PUPPET_ENV=null' 'PUPPET_DNS_AVAILABLE=null' 'PORTS=null' | assert_file "$ROOT/var/lib/cartridge/launch-params"
    assert_out "cartridge-init: hostname $DIGITS.default.php.puppet.example.org"
    hosts_for "$DIGITS.default.php.puppet.example.org" | assert_file "$ROOT/etc/hosts"
    printf '%s\n' '[main]' 'server = puppet.example.org' 'environment = production' \
        "certname = $DIGITS.default.php.puppet.example.org" | assert_file "$ROOT/etc/puppet/puppet.conf"
    show_output_on_failure
}

t_empty_fields_and_equals_in_values() {
    config_drive ',,SERVICE_NAME=php,,,REPO_URL=https://git.example.org/r.git?a=1&b==2,EMPTY=,,TOKEN=abc==,LAST=x=,'
    no_server
    run_init
    assert_rc 0
    printf '%s\n' 'SERVICE_NAME=php' 'REPO_URL=https://git.example.org/r.git?a=1&b==2' 'EMPTY=' \
        'TOKEN=abc==' 'LAST=x=' | assert_file "$ROOT/var/lib/cartridge/launch-params"
    assert_out "cartridge-init: launch-params: 5 keys in /var/lib/cartridge/launch-params"
    show_output_on_failure
}

t_one_pair_per_line_crlf() {
    # One pair per line (values may then contain commas), CRLF line ends, blank lines.
    config_drive $'SERVICE_NAME=php\r\n\r\nPORTS=80|443\r\nEXPORTING_PROPERTIES=a,b,c\r\n  DEPLOYMENT = default  \r\nPUPPET_HOSTNAME=puppet.test\r\n'
    no_server
    run_init
    assert_rc 0
    printf '%s\n' 'SERVICE_NAME=php' 'PORTS=80|443' 'EXPORTING_PROPERTIES=a,b,c' 'DEPLOYMENT=default' \
        'PUPPET_HOSTNAME=puppet.test' | assert_file "$ROOT/var/lib/cartridge/launch-params"
    assert_out "cartridge-init: hostname $DIGITS.default.php.puppet.test"
    show_output_on_failure
}

t_single_line_crlf() {
    config_drive $'SERVICE_NAME=php,PORTS=80,PUPPET_HOSTNAME=puppet.test\r\n'
    no_server
    run_init
    assert_rc 0
    printf '%s\n' 'SERVICE_NAME=php' 'PORTS=80' 'PUPPET_HOSTNAME=puppet.test' |
        assert_file "$ROOT/var/lib/cartridge/launch-params"
    ! grep -q $'\r' "$ROOT/var/lib/cartridge/launch-params" || fail "CR left in launch-params"
    show_output_on_failure
}

t_malformed_fields() {
    config_drive 'GOOD=1,noequals,1BAD=x,BAD-KEY=y, SPACED = v ,=nokey,GOOD=2,a.b=c,_OK9=z'
    no_server
    run_init
    assert_rc 0
    # the later GOOD wins, at the place of the first
    printf '%s\n' 'GOOD=2' 'SPACED=v' '_OK9=z' | assert_file "$ROOT/var/lib/cartridge/launch-params"
    assert_out "cartridge-init: payload: rejected a field without '=' (8 characters, not shown)"
    assert_out "cartridge-init: payload: rejected invalid key '1BAD'"
    assert_out "cartridge-init: payload: rejected invalid key 'BAD-KEY'"
    assert_out "cartridge-init: payload: rejected invalid key ''"
    assert_out "cartridge-init: payload: rejected invalid key 'a.b'"
    # no SERVICE_NAME in the payload: cartridge.conf's
    assert_out "cartridge-init: hostname $DIGITS.default.php.puppet.example.org"
    show_output_on_failure
}

t_shell_injection() {
    local p="$CASE_DIR/pwned"
    # shellcheck disable=SC2016  # the $(...) and backticks are meant literally
    local payload='SERVICE_NAME=$(touch '$p'1),DEPLOYMENT=`touch '$p'2`,PUPPET_HOSTNAME=x;touch '$p'3,PUPPET_IP=1.2.3.4;touch '$p'4,PUPPET_ENV=$(touch '$p'5),PUPPET_PORT=8140$(touch '$p'6),$(touch '$p'7)=1,X=${IFS}`id`$(touch '$PWNED_GLOBAL'),Y=";touch '$p'8;"'
    rm -f "$PWNED_GLOBAL"
    config_drive "$payload"
    no_server
    run_init
    assert_rc 0
    local f
    for f in "$p"1 "$p"2 "$p"3 "$p"4 "$p"5 "$p"6 "$p"7 "$p"8 "$PWNED_GLOBAL"; do
        assert_absent "$f"
    done
    # values are kept literally; the bad key is rejected
    # shellcheck disable=SC2016
    printf '%s\n' 'SERVICE_NAME=$(touch '"$p"'1)' 'DEPLOYMENT=`touch '"$p"'2`' \
        'PUPPET_HOSTNAME=x;touch '"$p"'3' 'PUPPET_IP=1.2.3.4;touch '"$p"'4' \
        'PUPPET_ENV=$(touch '"$p"'5)' 'PUPPET_PORT=8140$(touch '"$p"'6)' \
        'X=${IFS}`id`$(touch '"$PWNED_GLOBAL"')' 'Y=";touch '"$p"'8;"' |
        assert_file "$ROOT/var/lib/cartridge/launch-params"
    assert_out_re "^cartridge-init: payload: rejected invalid key '\\\$\\(touch .*'$"
    assert_out_re "^cartridge-init: ignoring SERVICE_NAME '.*' from the payload: not a valid hostname label$"
    assert_out_re "^cartridge-init: ignoring invalid PUPPET_HOSTNAME '.*' from the payload$"
    assert_out_re "^cartridge-init: ignoring invalid PUPPET_PORT '.*' from the payload$"
    assert_out_re "^cartridge-init: ignoring invalid Puppet environment '.*' from the payload$"
    # everything falls back to cartridge.conf; nothing odd reaches puppet.conf or hosts
    assert_out "cartridge-init: hostname $DIGITS.default.php.puppet.example.org"
    printf '%s\n' '[main]' 'server = puppet.example.org' 'environment = production' \
        "certname = $DIGITS.default.php.puppet.example.org" | assert_file "$ROOT/etc/puppet/puppet.conf"
    hosts_for "$DIGITS.default.php.puppet.example.org" | assert_file "$ROOT/etc/hosts"
    show_output_on_failure
}

t_injection_one_per_line() {
    # a line-mode payload cannot add sections to puppet.conf or lines to hosts
    config_drive $'SERVICE_NAME=php\nPUPPET_HOSTNAME=puppet.test\nPUPPET_ENV=production\n[agent]\nPUPPET_IP=10.0.2.101 evil.example.org\nPUPPET_PORT=8140\n'
    no_server
    run_init
    assert_rc 0
    assert_out "cartridge-init: payload: rejected a field without '=' (7 characters, not shown)"
    assert_out "cartridge-init: ignoring invalid PUPPET_IP '10.0.2.101 evil.example.org'"
    hosts_for "$DIGITS.default.php.puppet.test" | assert_file "$ROOT/etc/hosts"
    printf '%s\n' '[main]' 'server = puppet.test' 'environment = production' 'serverport = 8140' \
        "certname = $DIGITS.default.php.puppet.test" | assert_file "$ROOT/etc/puppet/puppet.conf"
    show_output_on_failure
}

t_empty_payload() {
    # An empty config drive user_data and a metadata service with no user data.
    config_drive ''
    start_server --ec2 v2 --openstack on
    run_init
    assert_rc 1
    assert_out "cartridge-init: payload from config-drive ($CASE_DIR/cd) is empty; trying the next source"
    assert_out "cartridge-init: openstack-metadata: no user_data (HTTP 404)"
    assert_out "cartridge-init: ec2-imds: no user-data (HTTP 404)"
    assert_out_re "^cartridge-init: no payload from any source \(config drive, OpenStack metadata, EC2 IMDS at $MD_URL\) after [0-9]+s: giving up; will try again at next boot$"
    assert_absent "$ROOT/var/lib/cartridge/launch-params"
    assert_absent "$ROOT/var/lib/cartridge/initialized"
    assert_absent "$ROOT/etc/hostname"
    show_output_on_failure
}

t_only_commas_and_blanks() {
    config_drive $' , ,,\r\n\n'
    no_server
    run_init
    assert_rc 1
    assert_out "cartridge-init: payload from config-drive ($CASE_DIR/cd) is empty; trying the next source"
    assert_absent "$ROOT/var/lib/cartridge/launch-params"
    show_output_on_failure
}

t_missing_everything_bounded() {
    # No config drive, nothing listening on the metadata port, default tries (3 per
    # source). It must give up by itself, quickly; the limit proves "never wait forever".
    no_server
    EXTRA_ENV=(CARTRIDGE_HTTP_RETRY_SLEEP=1)
    run_init
    assert_rc 1
    assert_out "cartridge-init: openstack-metadata: try 1/3 failed (no answer)"
    assert_out "cartridge-init: openstack-metadata: try 3/3 failed (no answer)"
    assert_out "cartridge-init: ec2-imds: try 3/3 failed (IMDSv1: no answer)"
    assert_out_re '^cartridge-init: no payload from any source .* giving up; will try again at next boot$'
    echo "    gave up after $ELAPSED ms with nothing to read"
    assert_absent "$ROOT/var/lib/cartridge/launch-params"
    assert_absent "$ROOT/var/lib/cartridge/initialized"
    show_output_on_failure
}

t_slow_metadata_bounded() {
    # A service that accepts connections but answers after 30 s: curl's --max-time and
    # the overall deadline bound the wait.
    payload_file 'SERVICE_NAME=php'
    start_server --ec2 v2 --openstack on --user-data "$CASE_DIR/user-data" --delay 30
    EXTRA_ENV=(CARTRIDGE_HTTP_MAX_TIME=1 CARTRIDGE_HTTP_TRIES=2 CARTRIDGE_FETCH_DEADLINE=6)
    run_init
    assert_rc 1
    assert_out "cartridge-init: openstack-metadata: try 1/2 failed (no answer)"
    assert_out_re '^cartridge-init: no payload from any source'
    assert_out "cartridge-init: openstack-metadata: try 2/2 failed (no answer)"
    echo "    slow service: gave up after $ELAPSED ms"
    show_output_on_failure
}

t_flaky_metadata_retries() {
    # The first two requests get HTTP 500: the OpenStack source retries, then gets a 404
    # and the EC2 source succeeds.
    payload_file 'SERVICE_NAME=php,PUPPET_HOSTNAME=puppet.test'
    start_server --ec2 v2-required --user-data "$CASE_DIR/user-data" --fail-first 2
    run_init
    assert_rc 0
    assert_out "cartridge-init: openstack-metadata: try 1/3 failed (HTTP 500)"
    assert_out "cartridge-init: openstack-metadata: try 2/3 failed (HTTP 500)"
    assert_out "cartridge-init: openstack-metadata: no user_data (HTTP 404)"
    assert_out "cartridge-init: payload from ec2-imds (IMDSv2, $MD_URL)"
    show_output_on_failure
}

t_second_run_keeps_hostname() {
    config_drive 'SERVICE_NAME=php,PUPPET_HOSTNAME=puppet.test,PUPPET_IP=10.0.2.101'
    no_server
    run_init
    assert_rc 0
    local fqdn=$DIGITS.default.php.puppet.test
    cp "$ROOT/var/lib/cartridge/launch-params" "$CASE_DIR/params.first"
    cp "$ROOT/etc/hosts" "$CASE_DIR/hosts.first"
    # second boot: other digits, another payload, /tmp cleared
    config_drive 'SERVICE_NAME=mysql,PUPPET_HOSTNAME=other.test'
    rm -rf "$ROOT/tmp/payload"
    run_init CARTRIDGE_HOST_DIGITS=999999999999
    assert_rc 0
    assert_out "cartridge-init: already initialized: keeping hostname $fqdn"
    assert_out "cartridge-init: would run: hostname $fqdn"
    assert_out "cartridge-init: puppet already ran on this instance: not running it again"
    refute_out_re 'would run: puppet|payload from|999999999999'
    printf '%s\n' "$fqdn" | assert_file "$ROOT/etc/hostname"
    assert_file "$ROOT/var/lib/cartridge/launch-params" <"$CASE_DIR/params.first"
    assert_file "$ROOT/tmp/payload/launch-params" <"$CASE_DIR/params.first"
    assert_file "$ROOT/etc/hosts" <"$CASE_DIR/hosts.first"
    assert_mode "$ROOT/tmp/payload/launch-params" "600 $UIDN"
    show_output_on_failure
}

# make_fake_puppet EXIT-CODES...: a puppet that exits with the next code each call and
# records its arguments in $CASE_DIR/puppet.calls.
make_fake_puppet() {
    printf '%s\n' "$@" >"$CASE_DIR/puppet.codes"
    cat >"$CASE_DIR/fake-puppet" <<EOF
#!/bin/bash
printf '%s\n' "\$*" >>"$CASE_DIR/puppet.calls"
code=\$(head -n 1 "$CASE_DIR/puppet.codes")
sed -i 1d "$CASE_DIR/puppet.codes"
[ -n "\$code" ] || code=0
echo "Info: fake puppet run"
[ "\$code" = 1 ] && echo "Error: Could not request certificate: Connection refused"
exit "\$code"
EOF
    chmod 755 "$CASE_DIR/fake-puppet"
}

t_puppet_retries_then_succeeds() {
    config_drive 'SERVICE_NAME=php,PUPPET_HOSTNAME=puppet.test,PUPPET_PORT=8141'
    no_server
    make_fake_puppet 1 4 2
    printf '%s\n' '[main]' 'server = puppet.example.org' 'environment = production' '' \
        '[agent]' 'server = stale.example.org' 'runinterval = 1h' >"$ROOT/etc/puppet/puppet.conf"
    run_init PUPPET_BIN="$CASE_DIR/fake-puppet"
    assert_rc 0
    local fqdn=$DIGITS.default.php.puppet.test
    assert_out "cartridge-init: puppet agent: try 1/5 (certname $fqdn, timeout 1200s)"
    assert_out "cartridge-init: puppet agent: failed (exit 1)"
    assert_out "cartridge-init: puppet: Error: Could not request certificate: Connection refused"
    assert_out "cartridge-init: puppet agent: failed (exit 4)"
    assert_out "cartridge-init: puppet agent: try 3/5 (certname $fqdn, timeout 1200s)"
    assert_out "cartridge-init: puppet agent: success, changes applied (exit 2)"
    # Puppet's own lines reach the console as they come; a retry first finishes dpkg
    assert_out "cartridge-init: puppet: Info: fake puppet run"
    assert_out "cartridge-init: would run: dpkg --configure -a"
    head -n 1 "$CASE_DIR/puppet.calls" >"$CASE_DIR/puppet.calls.first"
    [ "$(wc -l <"$CASE_DIR/puppet.calls")" = 3 ] || fail "puppet ran $(wc -l <"$CASE_DIR/puppet.calls") times, expected 3"
    printf '%s\n' 'agent --onetime --no-daemonize --detailed-exitcodes --verbose --color=false --http_keepalive_timeout 0 --waitforcert 10 --maxwaitforcert 120 --no-usecacheonfailure' |
        assert_file "$CASE_DIR/puppet.calls.first"
    # [main] gets the settings; [agent] loses the server that would override them
    printf '%s\n' '[main]' 'server = puppet.test' 'environment = production' \
        'serverport = 8141' "certname = $fqdn" '' '[agent]' 'runinterval = 1h' |
        assert_file "$ROOT/etc/puppet/puppet.conf"
    assert_present "$ROOT/var/lib/cartridge/puppet-done"
    grep -q 'Info: fake puppet run' "$ROOT/var/log/cartridge-init.log" || fail "puppet output not logged"
    show_output_on_failure
}

t_puppet_fails_then_next_boot_retries() {
    config_drive 'SERVICE_NAME=php,PUPPET_HOSTNAME=puppet.test'
    no_server
    make_fake_puppet 1 1 1
    run_init PUPPET_BIN="$CASE_DIR/fake-puppet" CARTRIDGE_PUPPET_TRIES=3
    assert_rc 1
    assert_out "cartridge-init: puppet agent: giving up after 3 tries; see /var/log/cartridge-init.log"
    assert_absent "$ROOT/var/lib/cartridge/puppet-done"
    assert_present "$ROOT/var/lib/cartridge/initialized"
    # next boot: same certname, puppet runs again and succeeds
    make_fake_puppet 0
    run_init PUPPET_BIN="$CASE_DIR/fake-puppet" CARTRIDGE_HOST_DIGITS=999999999999
    assert_rc 0
    assert_out "cartridge-init: already initialized: keeping hostname $DIGITS.default.php.puppet.test"
    assert_out "cartridge-init: puppet has not succeeded on this instance yet: trying again"
    assert_out "cartridge-init: puppet agent: success, no changes (exit 0)"
    grep -qxF "certname = $DIGITS.default.php.puppet.test" "$ROOT/etc/puppet/puppet.conf" || fail "certname changed"
    assert_present "$ROOT/var/lib/cartridge/puppet-done"
    show_output_on_failure
}

# make_slow_puppet: $CASE_DIR/slow-puppet, a puppet that outlives any per-try timeout.
make_slow_puppet() {
    cat >"$CASE_DIR/slow-puppet" <<'EOF'
#!/bin/bash
sleep 30
EOF
    chmod 755 "$CASE_DIR/slow-puppet"
}

t_puppet_deadline() {
    config_drive 'SERVICE_NAME=php,PUPPET_HOSTNAME=puppet.test'
    no_server
    make_slow_puppet
    run_init PUPPET_BIN="$CASE_DIR/slow-puppet" CARTRIDGE_PUPPET_TIMEOUT=1 CARTRIDGE_PUPPET_TRIES=2
    assert_rc 1
    assert_out "cartridge-init: puppet agent: timed out after 1s"
    assert_out "cartridge-init: puppet agent: giving up after 2 tries; see /var/log/cartridge-init.log"
    assert_out "cartridge-init: puppet agent: try 2/2 (certname $DIGITS.default.php.puppet.test, timeout 1s)"
    show_output_on_failure
}

t_puppet_limits_from_cartridge_conf() {
    printf '%s\n' 'PUPPET_TIMEOUT=1' 'PUPPET_TRIES=2' 'PUPPET_DEADLINE=1x' >>"$ROOT/etc/cartridge/cartridge.conf"
    config_drive 'SERVICE_NAME=php,PUPPET_HOSTNAME=puppet.test'
    no_server
    make_slow_puppet
    run_init PUPPET_BIN="$CASE_DIR/slow-puppet"
    assert_rc 1
    assert_out "cartridge-init: ignoring PUPPET_DEADLINE='1x': not a whole number"
    assert_out "cartridge-init: puppet agent: try 2/2 (certname $DIGITS.default.php.puppet.test, timeout 1s)"
    assert_out "cartridge-init: puppet agent: giving up after 2 tries; see /var/log/cartridge-init.log"
    show_output_on_failure
}

t_full_mode() {
    sed -i 's/^CARTRIDGE_MODE=.*/CARTRIDGE_MODE=full/' "$ROOT/etc/cartridge/cartridge.conf"
    cp "$ROOT/etc/puppet/puppet.conf" "$CASE_DIR/puppet.conf.before"
    config_drive 'SERVICE_NAME=php,PUPPET_HOSTNAME=puppet.test,PUPPET_IP=10.0.2.101,MB_IP=10.0.2.100,MB_PORT=1883'
    no_server
    run_init
    assert_rc 0
    assert_out "cartridge-init: starting (full mode)"
    assert_out "cartridge-init: would run: systemctl start --no-block cartridge-agent.service"
    assert_out_re '^cartridge-init: done \(full mode\) in [0-9]+s$'
    refute_out_re 'puppet agent|puppet.conf:'
    assert_file "$ROOT/etc/puppet/puppet.conf" <"$CASE_DIR/puppet.conf.before"
    assert_absent "$ROOT/var/lib/cartridge/puppet-done"
    printf '%s\n' 'SERVICE_NAME=php' 'PUPPET_HOSTNAME=puppet.test' 'PUPPET_IP=10.0.2.101' 'MB_IP=10.0.2.100' \
        'MB_PORT=1883' | assert_file "$ROOT/var/lib/cartridge/launch-params"
    # second boot in full mode: the agent starts on its own
    run_init
    assert_rc 0
    assert_out "cartridge-init: full mode: cartridge-agent.service starts on its own"
    refute_out_re 'systemctl'
    show_output_on_failure
}

t_no_puppet_server() {
    printf '%s\n' 'SERVICE_NAME=php' 'CARTRIDGE_MODE=generic' >"$ROOT/etc/cartridge/cartridge.conf"
    config_drive 'SERVICE_NAME=php,PUPPET_IP=10.0.2.101'
    no_server
    run_init
    assert_rc 0
    assert_out "cartridge-init: hostname $DIGITS.default.php.localdomain"
    assert_out "cartridge-init: no Puppet server (PUPPET_HOSTNAME in the payload, PUPPET_SERVER in cartridge.conf): skipping puppet"
    hosts_for "$DIGITS.default.php.localdomain" | assert_file "$ROOT/etc/hosts"
    show_output_on_failure
}

t_no_cartridge_conf() {
    rm -f "$ROOT/etc/cartridge/cartridge.conf"
    config_drive 'PUPPET_HOSTNAME=puppet.test,DEPLOYMENT=Prod'
    no_server
    run_init
    assert_rc 0
    assert_out "cartridge-init: no /etc/cartridge/cartridge.conf: assuming generic mode"
    assert_out "cartridge-init: hostname $DIGITS.prod.unknown.puppet.test"
    show_output_on_failure
}

t_existing_hosts_kept() {
    printf '%s\n' '127.0.0.1 localhost' '127.0.1.1 debian' '10.1.1.1 db.internal db' '# a comment' \
        >"$ROOT/etc/hosts"
    config_drive 'SERVICE_NAME=PHP,PUPPET_HOSTNAME=Puppet.Test,PUPPET_IP=10.0.2.101'
    no_server
    run_init
    assert_rc 0
    local fqdn=$DIGITS.default.php.puppet.test
    printf '%s\n' '127.0.0.1 localhost' '10.1.1.1 db.internal db' '# a comment' \
        '# BEGIN cartridge-init' "127.0.1.1"$'\t'"$fqdn $DIGITS" '10.0.2.101'$'\t''puppet.test' \
        '# END cartridge-init' | assert_file "$ROOT/etc/hosts"
    show_output_on_failure
}

t_long_hostname() {
    local dom=puppet.a-very-long-subdomain-name-for-testing.example.org
    config_drive "SERVICE_NAME=php,PUPPET_HOSTNAME=$dom"
    no_server
    run_init
    assert_rc 0
    local fqdn=$DIGITS.default.php.$dom
    assert_out "cartridge-init: hostname longer than 64 characters: kernel hostname is $DIGITS"
    assert_out "cartridge-init: would run: hostname $DIGITS"
    printf '%s\n' "$DIGITS" | assert_file "$ROOT/etc/hostname"
    grep -qxF "certname = $fqdn" "$ROOT/etc/puppet/puppet.conf" || fail "certname is not the FQDN"
    grep -qxF "127.0.1.1"$'\t'"$fqdn $DIGITS" "$ROOT/etc/hosts" || fail "hosts lacks the FQDN"
    show_output_on_failure
}

t_random_digits() {
    # without the test override: 4 random digits + ddmmyySS
    config_drive 'SERVICE_NAME=php,PUPPET_HOSTNAME=puppet.test'
    no_server
    run_init CARTRIDGE_HOST_DIGITS=
    assert_rc 0
    assert_out_re "^cartridge-init: hostname [0-9]{4}$(date +%d%m%y)[0-9]{2}\.default\.php\.puppet\.test$"
    show_output_on_failure
}

# The shared payload test vectors (tests/data/payload/README.md): cartridge-init's parser,
# read the way its consumers read it (ci_param: an empty or "null" value is absent), gives
# each vector's expected key/value result, or its recorded deviation (NAME.expected.shell).
# SC2031: the parser runs in a subshell on purpose (it must not touch this shell's state).
# shellcheck disable=SC2031
t_payload_vectors() {
    local dir=$REPO/tests/data/payload vec name expected n=0
    for vec in "$dir"/*.payload; do
        name=$(basename "$vec" .payload)
        expected=$dir/$name.expected
        [ -f "$expected.shell" ] && expected=$expected.shell
        if ! (
            # shellcheck source-path=SCRIPTDIR source=../../init-scripts/lib/payload.sh
            . "$LIB/payload.sh"
            CARTRIDGE_ROOT=$CASE_DIR/vectors ci_init_paths
            CI_LOG=""
            ci_normalise_payload "$vec" "$CASE_DIR/$name.normalised"
        ) >"$CASE_DIR/$name.out" 2>&1; then
            fail "vector $name: ci_normalise_payload failed"
            continue
        fi
        { grep -v -e '=$' -e '=null$' "$CASE_DIR/$name.normalised" || true; } | LC_ALL=C sort >"$CASE_DIR/$name.got"
        if ! cmp -s "$expected" "$CASE_DIR/$name.got"; then
            fail "vector $name differs from $(basename "$expected") (expected < > parsed):"
            diff "$expected" "$CASE_DIR/$name.got" | sed 's/^/        /' | head -n 20
        fi
        n=$((n + 1))
    done
    [ "$n" -ge 8 ] || fail "only $n payload vectors in $dir"
}

# shellcheck disable=SC2016  # literal $ in test data
t_library_functions() {
    # The library is sourced on its own, as other scripts may do.
    (
        set -u
        # shellcheck source-path=SCRIPTDIR source=../../init-scripts/lib/payload.sh
        . "$LIB/payload.sh"
        CARTRIDGE_ROOT=$CASE_DIR/lib ci_init_paths
        [ "$CI_PARAMS_FILE" = "$CASE_DIR/lib/var/lib/cartridge/launch-params" ] || echo "FAIL paths"
        ci_is_domain puppet.example.org || echo "FAIL domain"
        ! ci_is_domain 'a..b' || echo "FAIL a..b"
        ! ci_is_domain '-a.b' || echo "FAIL -a.b"
        ! ci_is_domain 'Upper.case' || echo "FAIL upper"
        ci_is_ipv4 192.168.30.90 || echo "FAIL ipv4"
        ! ci_is_ipv4 256.1.1.1 || echo "FAIL 256"
        ci_is_ip fd00::1 || echo "FAIL ipv6"
        ci_is_port 8140 && ! ci_is_port 0 && ! ci_is_port 65536 || echo "FAIL port"
        [ "$(ci_bool TRUE)" = true ] && [ -z "$(ci_bool null)" ] || echo "FAIL bool"
        # ini editing: key before any section is left alone, missing section added
        f=$CASE_DIR/ini
        printf '%s\n' '# top' '[agent]' 'certname=old' 'server =x' >"$f"
        ci_ini_set "$f" main server 'a b \t $x'
        ci_ini_del "$f" agent server
        printf '%s\n' '# top' '[agent]' 'certname=old' '[main]' 'server = a b \t $x' | cmp -s - "$f" ||
            { echo "FAIL ini"; cat "$f"; }
        # conf parser: quotes stripped, no evaluation
        printf '%s\n' 'SERVICE_NAME="php"' "PUPPET_SERVER='p.test'" 'export PORTS=80' \
            'X=$(touch '"$CASE_DIR"'/pwned-conf)' '# c' >"$CASE_DIR/conf"
        ci_load_conf "$CASE_DIR/conf"
        [ "$(ci_conf SERVICE_NAME)" = php ] && [ "$(ci_conf PUPPET_SERVER)" = p.test ] &&
            [ "$(ci_conf PORTS)" = 80 ] || echo "FAIL conf"
        [ ! -e "$CASE_DIR/pwned-conf" ] || echo "FAIL conf evaluated"
    ) >"$CASE_DIR/out.lib" 2>&1
    OUT=$CASE_DIR/out.lib
    ! grep -q FAIL "$OUT" || { fail "library checks"; sed 's/^/      | /' "$OUT"; }
}

# ------------------------------------------------------------------ ssh, growroot, time

KEY_A='ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKeyAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa cloud-a'
KEY_B='ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQCkeyBbbbbbbbbbbbbbbbbbbbbbbbb= cloud b@host'
KEY_OWN='ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOwnOwnOwnOwnOwnOwnOwnOwnOwnOwnOwnOwnOwnOwn admin'
BEGIN_KEYS='# BEGIN cartridge-init: the cloud key pair (rewritten at every boot)'

# with_login_user [NAME HOME]: a passwd with root (and NAME) so cartridge-init finds homes.
with_login_user() {
    printf 'root:x:0:0:root:/root:/bin/bash\n' >"$ROOT/etc/passwd"
    mkdir -p "$ROOT/root"
    if [ $# -ge 2 ]; then
        printf '%s:x:%s:%s::%s:/bin/bash\n' "$1" "$(id -u)" "$(id -g)" "$2" >>"$ROOT/etc/passwd"
        mkdir -p "$ROOT$2"
    fi
}

# config_drive_keys KEY...: the config drive's meta_data.json with these public_keys (JSON
# escaped the way Nova writes them: a trailing \n, slashes as \/).
config_drive_keys() {
    local k i=0
    {
        printf '{"uuid": "83679162-1378-4288-a2d4-70e13ec132aa", "public_keys": {'
        for k in "$@"; do
            [ "$i" = 0 ] || printf ', '
            printf '"key%s": "%s\\n"' "$i" "${k//\//\\/}"
            i=$((i + 1))
        done
        printf '}, "name": "vm1"}\n'
    } >"$CASE_DIR/cd/openstack/latest/meta_data.json"
}

t_ssh_keys_config_drive() {
    with_login_user
    config_drive 'SERVICE_NAME=php'
    config_drive_keys "$KEY_A" "$KEY_B"
    no_server
    run_init
    assert_rc 0
    assert_out "cartridge-init: ssh: 2 key(s) of the cloud key pair from config-drive for root (/root/.ssh/authorized_keys)"
    printf '%s\n' "$BEGIN_KEYS" "$KEY_A" "$KEY_B" '# END cartridge-init' | assert_file "$ROOT/root/.ssh/authorized_keys"
    assert_mode "$ROOT/root/.ssh/authorized_keys" "600 $UIDN"
    assert_mode "$ROOT/root/.ssh" "700 $UIDN"
    show_output_on_failure
}

t_ssh_keys_openstack_metadata() {
    with_login_user
    payload_file 'SERVICE_NAME=php'
    start_server --ec2 v2 --openstack on --user-data "$CASE_DIR/user-data" --public-key "$KEY_B"
    run_init
    assert_rc 0
    assert_out "cartridge-init: ssh: 1 key(s) of the cloud key pair from openstack-metadata for root (/root/.ssh/authorized_keys)"
    printf '%s\n' "$BEGIN_KEYS" "$KEY_B" '# END cartridge-init' | assert_file "$ROOT/root/.ssh/authorized_keys"
    ! grep -q 'public-keys' "$SERVER_LOG" || fail "EC2 asked for keys although OpenStack answered"
    show_output_on_failure
}

t_ssh_keys_imdsv2() {
    # LOGIN_USER names another user: the keys go to that user's home.
    with_login_user admin /home/admin
    printf 'LOGIN_USER=admin\n' >>"$ROOT/etc/cartridge/cartridge.conf"
    payload_file 'SERVICE_NAME=php'
    start_server --ec2 v2-required --user-data "$CASE_DIR/user-data" --public-key "$KEY_A"
    run_init
    assert_rc 0
    assert_out "cartridge-init: ssh: 1 key(s) of the cloud key pair from ec2-imds (IMDSv2) for admin (/home/admin/.ssh/authorized_keys)"
    printf '%s\n' "$BEGIN_KEYS" "$KEY_A" '# END cartridge-init' | assert_file "$ROOT/home/admin/.ssh/authorized_keys"
    assert_absent "$ROOT/root/.ssh"
    grep -qxF 'GET /latest/meta-data/public-keys/0/openssh-key token=valid ttl=-' "$SERVER_LOG" ||
        fail "openssh-key not read with an IMDSv2 token"
    show_output_on_failure
}

t_ssh_keys_refreshed() {
    # Every boot: the cloud's block is rewritten (no duplicates), a key added by hand is
    # kept, a cloud key already present by hand is not written twice, and a line that is
    # not a plain key (authorized_keys options) never lands in the file.
    with_login_user
    mkdir -p "$ROOT/root/.ssh"
    printf '%s\n' "$KEY_OWN" "$KEY_B" >"$ROOT/root/.ssh/authorized_keys"
    config_drive 'SERVICE_NAME=php'
    config_drive_keys "$KEY_A" "$KEY_B" 'command=\"/bin/sh\" ssh-ed25519 AAAAC3Nz evil'
    no_server
    run_init
    assert_rc 0
    assert_out "cartridge-init: ssh: ignoring a public key that is not one (43 characters, not shown)"
    local want
    want=$(printf '%s\n' "$KEY_OWN" "$KEY_B" "$BEGIN_KEYS" "$KEY_A" '# END cartridge-init')
    printf '%s\n' "$want" | assert_file "$ROOT/root/.ssh/authorized_keys"
    run_init
    assert_rc 0
    assert_out "cartridge-init: already initialized: keeping hostname $DIGITS.default.php.puppet.example.org"
    printf '%s\n' "$want" | assert_file "$ROOT/root/.ssh/authorized_keys"
    # the cloud's key pair changed: the old cloud key goes, the hand-made ones stay
    config_drive_keys "$KEY_OWN"
    run_init
    assert_rc 0
    printf '%s\n' "$KEY_OWN" "$KEY_B" | assert_file "$ROOT/root/.ssh/authorized_keys"
    # no source answers: the keys stay as they are
    printf '%s\n' "$want" >"$ROOT/root/.ssh/authorized_keys"
    rm -rf "$CASE_DIR/cd/openstack"
    run_init
    assert_rc 0
    assert_out "cartridge-init: ssh: no metadata source answered: keeping the authorized keys of root as they are"
    printf '%s\n' "$want" | assert_file "$ROOT/root/.ssh/authorized_keys"
    show_output_on_failure
}

t_ssh_off() {
    with_login_user
    printf 'SSH=off\n' >>"$ROOT/etc/cartridge/cartridge.conf"
    config_drive 'SERVICE_NAME=php'
    config_drive_keys "$KEY_A"
    no_server
    run_init
    assert_rc 0
    assert_out "cartridge-init: ssh: off (SSH=off in /etc/cartridge/cartridge.conf): masking sshd"
    assert_out "cartridge-init: would run: systemctl mask --now ssh.service ssh.socket"
    assert_absent "$ROOT/root/.ssh"
    # ssh.service's ExecCondition: exit 1 (skip) with SSH=off, 0 otherwise, and silent
    local rc
    env -i PATH="$PATH" CARTRIDGE_ROOT="$ROOT" CARTRIDGE_LIB="$LIB" "$INIT" --ssh-enabled >"$CASE_DIR/cond.out" 2>&1
    rc=$?
    [ "$rc" = 1 ] || fail "--ssh-enabled exits $rc with SSH=off, expected 1"
    [ ! -s "$CASE_DIR/cond.out" ] || fail "--ssh-enabled printed: $(cat "$CASE_DIR/cond.out")"
    sed -i 's/^SSH=off$/SSH=on/' "$ROOT/etc/cartridge/cartridge.conf"
    env -i PATH="$PATH" CARTRIDGE_ROOT="$ROOT" CARTRIDGE_LIB="$LIB" "$INIT" --ssh-enabled ||
        fail "--ssh-enabled fails with SSH=on"
    rm -f "$ROOT/etc/cartridge/cartridge.conf"
    env -i PATH="$PATH" CARTRIDGE_ROOT="$ROOT" CARTRIDGE_LIB="$LIB" "$INIT" --ssh-enabled ||
        fail "--ssh-enabled fails without cartridge.conf"
    show_output_on_failure
}

# fake_disk DISK_SECTORS: mountinfo and sysfs of a root on partition 2 (start 257 MiB,
# 2047 MiB long) of a disk vdx (root is device 254:2), and stubs for growpart (records its
# argv, grows the partition's sysfs size to the disk's end, says CHANGED or NOCHANGE with
# exit 0 or 1 as the real one does) and resize2fs (records its argv).
fake_disk() {
    local sys=$ROOT/sys
    mkdir -p "$ROOT/proc/self" "$sys/devices/virtual/block/vdx/vdx2" "$sys/dev/block" "$CASE_DIR/bin"
    printf '%s\n' '22 1 254:2 / / rw,relatime shared:1 - ext4 /dev/vdx2 rw,errors=remount-ro' \
        '25 22 254:1 / /boot rw,relatime shared:2 - ext4 /dev/vdx1 rw' >"$ROOT/proc/self/mountinfo"
    printf '%s\n' "$1" >"$sys/devices/virtual/block/vdx/size"
    printf '2\n' >"$sys/devices/virtual/block/vdx/vdx2/partition"
    printf '526336\n' >"$sys/devices/virtual/block/vdx/vdx2/start"
    printf '4192256\n' >"$sys/devices/virtual/block/vdx/vdx2/size"
    ln -sfn ../../devices/virtual/block/vdx/vdx2 "$sys/dev/block/254:2"
    cat >"$CASE_DIR/bin/growpart" <<STUB
#!/bin/bash
printf '%s\n' "growpart \$*" >>"$CASE_DIR/calls"
p=$sys/devices/virtual/block/vdx/vdx2
new=\$((\$(cat $sys/devices/virtual/block/vdx/size) - \$(cat \$p/start)))
if [ "\$new" -le "\$(cat \$p/size)" ]; then echo "NOCHANGE: partition 2 cannot be grown"; exit 1; fi
echo "CHANGED: partition=2 start=526336 old: size=\$(cat \$p/size) new: size=\$new"
printf '%s\n' "\$new" >\$p/size
STUB
    printf '#!/bin/bash\nprintf "%%s\\n" "resize2fs $*" >>%q\n' "$CASE_DIR/calls" >"$CASE_DIR/bin/resize2fs"
    chmod +x "$CASE_DIR/bin/growpart" "$CASE_DIR/bin/resize2fs"
    : >"$CASE_DIR/calls"
    EXTRA_ENV=(CARTRIDGE_GROWPART="$CASE_DIR/bin/growpart" CARTRIDGE_RESIZE2FS="$CASE_DIR/bin/resize2fs")
}

t_growroot_larger_disk() {
    fake_disk $((8192 * 2048)) # 8 GiB
    config_drive 'SERVICE_NAME=php'
    no_server
    run_init
    assert_rc 0
    assert_out "cartridge-init: grew / from 2047 MiB to 7935 MiB (/dev/vdx2 on /dev/vdx)"
    printf '%s\n' 'growpart /dev/vdx 2' 'resize2fs /dev/vdx2' | assert_file "$CASE_DIR/calls"
    assert_present "$ROOT/var/lib/cartridge/root-grown"
    # once: a later boot, even on a disk grown again, runs neither
    : >"$CASE_DIR/calls"
    printf '%s\n' $((16384 * 2048)) >"$ROOT/sys/devices/virtual/block/vdx/size"
    run_init
    assert_rc 0
    refute_out_re 'grew|growroot'
    assert_file "$CASE_DIR/calls" </dev/null
    show_output_on_failure
}

t_growroot_equal_disk() {
    fake_disk $((526336 + 4192256)) # the image's size: root ends at the disk's end
    config_drive 'SERVICE_NAME=php'
    no_server
    run_init
    assert_rc 0
    assert_out "cartridge-init: growroot: / (/dev/vdx2) already fills /dev/vdx (2047 MiB)"
    assert_file "$CASE_DIR/calls" </dev/null
    assert_present "$ROOT/var/lib/cartridge/root-grown"
    show_output_on_failure
}

t_growroot_nochange_and_failure() {
    # growpart's NOCHANGE (exit 1) is not an error; a real failure is tried again next boot.
    fake_disk $((8192 * 2048))
    printf '#!/bin/bash\necho "NOCHANGE: partition 2 could only be grown by 1 [fudge=2048]"; exit 1\n' >"$CASE_DIR/bin/growpart"
    config_drive 'SERVICE_NAME=php'
    no_server
    run_init
    assert_rc 0
    assert_out "cartridge-init: growroot: growpart found nothing to grow on /dev/vdx"
    assert_present "$ROOT/var/lib/cartridge/root-grown"
    rm -f "$ROOT/var/lib/cartridge/root-grown"
    printf '#!/bin/bash\necho "FAILED: sfdisk said no"; exit 2\n' >"$CASE_DIR/bin/growpart"
    run_init
    assert_rc 0
    assert_out "cartridge-init: growroot: growpart /dev/vdx 2 failed (exit 2): FAILED: sfdisk said no"
    assert_absent "$ROOT/var/lib/cartridge/root-grown"
    assert_file "$CASE_DIR/calls" </dev/null # resize2fs never ran
    show_output_on_failure
}

t_ntp_servers() {
    local dropin=$ROOT/etc/systemd/timesyncd.conf.d/90-cartridge.conf
    printf 'NTP_SERVERS="ntp1.example.org, 10.0.0.5 bad;name"\n' >>"$ROOT/etc/cartridge/cartridge.conf"
    config_drive 'SERVICE_NAME=php'
    no_server
    run_init
    assert_rc 0
    assert_out "cartridge-init: time: ignoring NTP server 'bad;name': not a host name or address"
    assert_out "cartridge-init: time: NTP servers ntp1.example.org 10.0.0.5 (NTP_SERVERS)"
    assert_out "cartridge-init: would run: systemctl try-restart systemd-timesyncd.service"
    printf '%s\n' '# Written by cartridge-init from NTP_SERVERS in /etc/cartridge/cartridge.conf' '[Time]' 'NTP=' \
        'NTP=ntp1.example.org 10.0.0.5' | assert_file "$dropin"
    assert_mode "$dropin" "644 $UIDN"
    # unchanged: no restart; gone from cartridge.conf: the drop-in goes
    run_init
    refute_out_re 'timesyncd|time: NTP'
    sed -i '/^NTP_SERVERS=/d' "$ROOT/etc/cartridge/cartridge.conf"
    run_init
    assert_out "cartridge-init: time: NTP_SERVERS gone: back to DHCP's or Debian's servers"
    assert_absent "$dropin"
    show_output_on_failure
}

t_ssh_dropins() {
    local d=$REPO/init-scripts/systemd/ssh.service.d/cartridge.conf s=$REPO/init-scripts/sshd_config.d/10-cartridge.conf l
    # Debian's ExecStartPre (sshd -t) is replaced, so the keys are made before it runs.
    printf '%s\n' 'ExecCondition=/usr/sbin/cartridge-init --ssh-enabled' 'ExecStartPre=' \
        'ExecStartPre=/usr/bin/ssh-keygen -A' 'ExecStartPre=/usr/sbin/sshd -t' >"$CASE_DIR/exec.want"
    grep -E '^Exec' "$d" >"$CASE_DIR/exec.got"
    assert_file "$CASE_DIR/exec.got" <"$CASE_DIR/exec.want"
    grep -E -v '^(#|$)' "$s" | LC_ALL=C sort >"$CASE_DIR/sshd.got"
    printf '%s\n' 'KbdInteractiveAuthentication no' 'PasswordAuthentication no' \
        'PermitRootLogin prohibit-password' | assert_file "$CASE_DIR/sshd.got"
    if [ -x /usr/sbin/sshd ]; then
        # sshd's own reading of the drop-in, with a throw-away host key
        ssh-keygen -q -t ed25519 -N '' -f "$CASE_DIR/hostkey" >/dev/null
        printf 'Include %s\nPasswordAuthentication yes\nPermitRootLogin yes\n' "$s" >"$CASE_DIR/sshd_config"
        /usr/sbin/sshd -T -f "$CASE_DIR/sshd_config" -h "$CASE_DIR/hostkey" >"$CASE_DIR/sshd-T" 2>&1 ||
            fail "sshd -T: $(tail -n 3 "$CASE_DIR/sshd-T")"
        for l in 'passwordauthentication no' 'kbdinteractiveauthentication no' 'permitrootlogin without-password'; do
            grep -qxF "$l" "$CASE_DIR/sshd-T" || fail "sshd -T lacks '$l'"
        done
    else
        echo "    (sshd not installed: sshd -T skipped)"
    fi
}

# ------------------------------------------------------------------ main

CASES=(
    t_static_checks t_library_functions
    t_stratos_sample_config_drive t_ec2_imdsv2_required t_ec2_imdsv1_only t_openstack_metadata
    t_swapped_puppet_fields t_unswapped_puppet_fields t_dns_available_true t_null_values
    t_empty_fields_and_equals_in_values t_one_pair_per_line_crlf t_single_line_crlf
    t_malformed_fields t_shell_injection t_injection_one_per_line
    t_empty_payload t_only_commas_and_blanks t_missing_everything_bounded t_slow_metadata_bounded
    t_flaky_metadata_retries t_second_run_keeps_hostname
    t_puppet_retries_then_succeeds t_puppet_fails_then_next_boot_retries t_puppet_deadline t_puppet_limits_from_cartridge_conf
    t_full_mode t_no_puppet_server t_no_cartridge_conf t_existing_hosts_kept t_long_hostname
    t_random_digits t_payload_vectors
    t_ssh_keys_config_drive t_ssh_keys_openstack_metadata t_ssh_keys_imdsv2 t_ssh_keys_refreshed t_ssh_off
    t_growroot_larger_disk t_growroot_equal_disk t_growroot_nochange_and_failure t_ntp_servers t_ssh_dropins
)

run_cases init-scripts "${CASES[@]}"
