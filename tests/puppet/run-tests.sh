#!/bin/bash
# Tests of puppet/ (site.pp classification, modules base/php/agent, fact cartridge_payload).
# Usage: tests/puppet/run-tests.sh [CASE-NAME-SUBSTRING]
# Needs puppet-agent 7 (Debian's `puppet`, `facter`, `ruby`); puppet-lint when installed.
# Nothing is applied to this host: catalogs are compiled with `puppet apply` whose only
# applied resources are files under a private temporary directory (--tags), with private
# --confdir/--vardir/--codedir/..., so /etc/puppet and /var/cache/puppet are not touched.
# Exit status 0 when every case passed; on failure the work directory is kept.
# shellcheck disable=SC2317  # cases and helpers are called indirectly
set -u -o pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
PUPPET_DIR=$REPO/puppet
SITE=$PUPPET_DIR/manifests/site.pp
MODULES=$PUPPET_DIR/modules
FILTER=${1:-}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/cartridge-puppet-tests.XXXXXX")
touch "$WORK/stamp"
PASSED=0 FAILED=0 SKIPPED=0
FAILED_CASES=()

cleanup() {
    if [ "$FAILED" -eq 0 ]; then rm -rf "$WORK"; else echo "work directory kept: $WORK"; fi
}
trap cleanup EXIT

if ! command -v puppet >/dev/null; then
    echo "puppet is not installed (Debian package puppet-agent; scripts/install-deps test)"
    exit 1
fi

CASE="" CASE_DIR="" CASE_OK=1 OUT="" RC=0

begin() {
    CASE=$1
    CASE_DIR=$WORK/$CASE
    CASE_OK=1
    mkdir -p "$CASE_DIR/out"
}
fail() { echo "    FAIL: $*"; CASE_OK=0; }
end() {
    if [ "$CASE_OK" = 1 ]; then
        PASSED=$((PASSED + 1)); echo "PASS $CASE"
    else
        FAILED=$((FAILED + 1)); FAILED_CASES+=("$CASE"); echo "FAIL $CASE (files in $CASE_DIR)"
    fi
}
selected() { [ -z "$FILTER" ] || [[ $1 == *"$FILTER"* ]]; }

# Facter complains about /proc/1/environ in this sandbox (PID 1 is not init): noise.
filter_noise() { grep -v -e '/proc/1/environ' -e '^$' || true; }

assert_file() {
    local path=$1 exp
    exp=$(mktemp "$CASE_DIR/expected.XXXXXX")
    cat >"$exp"
    if [ ! -f "$path" ]; then
        fail "missing file $path"
    elif ! cmp -s "$exp" "$path"; then
        fail "content of $path differs (expected < > actual):"
        diff "$exp" "$path" | sed 's/^/        /' | head -n 40
    fi
}

# papply CERTNAME MANIFEST TAGS [puppet options...]: `puppet apply` with private
# directories under $CASE_DIR; only resources tagged TAGS are applied. Output in $OUT.
papply() {
    local certname=$1 manifest=$2 tags=$3
    shift 3
    local d=$CASE_DIR/puppet
    mkdir -p "$d"
    OUT=$CASE_DIR/apply.out
    puppet apply --color=false --detailed-exitcodes \
        --confdir "$d/conf" --vardir "$d/var" --codedir "$d/code" --logdir "$d/log" \
        --rundir "$d/run" --publicdir "$d/public" --ssldir "$d/ssl" --statedir "$d/state" \
        --hiera_config "$d/hiera.yaml" \
        --modulepath "$MODULES" --certname "$certname" --tags "$tags" \
        "$@" "$manifest" 2>&1 | filter_noise >"$OUT"
    RC=${PIPESTATUS[0]}
    if [ "$RC" != 0 ] && [ "$RC" != 2 ]; then
        fail "puppet apply exited $RC"
        sed 's/^/      | /' "$OUT"
        return 1
    fi
    if grep -qE '^(Error|Warning):' "$OUT"; then
        fail "puppet apply printed errors or warnings"
        sed 's/^/      | /' "$OUT"
    fi
}

# classify CERTNAME [ENV...]: compiles site.pp for CERTNAME (noop; only notify resources
# are evaluated). Sets CLASSES (space-separated, in evaluation order, without the
# built-in settings/default) and EDGES (class -> class lines of the relationship graph).
classify() {
    local certname=$1
    shift
    local d=$CASE_DIR/puppet
    rm -rf "$d"
    mkdir -p "$d"
    OUT=$CASE_DIR/apply.out
    env "$@" puppet apply --noop --color=false --detailed-exitcodes \
        --confdir "$d/conf" --vardir "$d/var" --codedir "$d/code" --logdir "$d/log" \
        --rundir "$d/run" --publicdir "$d/public" --ssldir "$d/ssl" --statedir "$d/state" \
        --hiera_config "$d/hiera.yaml" \
        --modulepath "$MODULES" --certname "$certname" --tags notify \
        --write-catalog-summary --graph --graphdir "$d/graphs" \
        "$SITE" 2>&1 | filter_noise >"$OUT"
    RC=${PIPESTATUS[0]}
    if [ "$RC" != 0 ] && [ "$RC" != 2 ]; then
        fail "puppet apply exited $RC for $certname"
        sed 's/^/      | /' "$OUT"
        CLASSES="" EDGES=""
        return 1
    fi
    CLASSES=$(grep -vxE 'settings|default' "$d/state/classes.txt" | tr '\n' ' ')
    CLASSES=${CLASSES% }
    EDGES=$(grep -oE '"Class\[[A-Za-z_:]+\]" -> "Class\[[A-Za-z_:]+\]"' "$d/graphs/relationships.dot" |
        grep -v 'Class\[Main\]\|Class\[Settings\]' | tr -d '"' | sort | tr '\n' ';')
}

expect_classes() {
    [ "$CLASSES" = "$1" ] || { fail "classes for $2: '$CLASSES', expected '$1'"; sed 's/^/      | /' "$OUT"; }
}

expect_unknown_notice() {
    grep -qF "cartridge: unknown service $1 in certname $2: only class base applied" "$OUT" ||
        { fail "no unknown-service notice naming '$1' for $2"; sed 's/^/      | /' "$OUT"; }
}

expect_no_unknown_notice() {
    ! grep -qF 'cartridge: unknown service' "$OUT" || fail "unexpected unknown-service notice for $1"
}

# ------------------------------------------------------------------ cases

t_validate() {
    local f n=0
    while IFS= read -r f; do
        n=$((n + 1))
        puppet parser validate --color=false "$f" 2>&1 | filter_noise >"$CASE_DIR/validate.out"
        [ "${PIPESTATUS[0]}" = 0 ] || { fail "puppet parser validate $f"; cat "$CASE_DIR/validate.out"; }
    done < <(find "$PUPPET_DIR" -name '*.pp' | sort)
    [ "$n" -ge 6 ] || fail "only $n .pp files found"
    while IFS= read -r f; do
        puppet epp validate --color=false "$f" 2>&1 | filter_noise >"$CASE_DIR/validate.out"
        [ "${PIPESTATUS[0]}" = 0 ] || { fail "puppet epp validate $f"; cat "$CASE_DIR/validate.out"; }
    done < <(find "$PUPPET_DIR" -name '*.epp' | sort)
    while IFS= read -r f; do
        ruby -wc "$f" >/dev/null || fail "ruby -c $f"
    done < <(find "$PUPPET_DIR" -name '*.rb' | sort)
    if command -v puppet-lint >/dev/null; then
        find "$PUPPET_DIR" -name '*.pp' -print0 | sort -z |
            xargs -0 puppet-lint --fail-on-warnings >"$CASE_DIR/lint.out" 2>&1 ||
            { fail "puppet-lint"; cat "$CASE_DIR/lint.out"; }
    else
        echo "    (puppet-lint not installed: skipped)"
    fi
}

t_classify_php() {
    local c=1234251125.default.php.puppet.example.org
    classify "$c"
    expect_classes "base php agent" "$c"
    expect_no_unknown_notice "$c"
    [ "$EDGES" = "Class[Base] -> Class[Php];Class[Php] -> Class[Agent];" ] ||
        fail "class order edges: '$EDGES'"
}

t_classify_service_in_domain() {
    # The original /php/ regex matched the master's domain: this is a mysql node.
    local c=1234.default.mysql.php.example.org
    classify "$c"
    expect_classes "base" "$c"
    expect_unknown_notice mysql "$c"
}

t_classify_php_with_php_domain() {
    local c=1234.default.php.php-hosting.example.org
    classify "$c"
    expect_classes "base php agent" "$c"
}

t_classify_unknown_service() {
    local c=1234.default.tomcat.puppet.example.org
    classify "$c"
    expect_classes "base" "$c"
    expect_unknown_notice tomcat "$c"
}

t_classify_service_named_default() {
    # DEPLOYMENT is always "default" in Stratos; /default/ matched every node.
    local c=1234.default.default.puppet.example.org
    classify "$c"
    expect_classes "base" "$c"
    expect_unknown_notice default "$c"
}

t_classify_other_deployment() {
    local c=1234.production.php.puppet.example.org
    classify "$c"
    expect_classes "base php agent" "$c"
}

t_classify_prefix_is_not_enough() {
    # exact label match: "phpmyadmin" and "ph" are not "php"
    local c
    for c in 1234.default.phpmyadmin.puppet.example.org 1234.default.ph.puppet.example.org; do
        classify "$c"
        expect_classes "base" "$c"
    done
    expect_unknown_notice ph 1234.default.ph.puppet.example.org
}

t_classify_short_certname() {
    classify localhost
    expect_classes "base" localhost
    expect_unknown_notice '(none)' localhost
    classify php.example.org   # label 2 is "org"
    expect_classes "base" php.example.org
    expect_unknown_notice org php.example.org
}

t_classify_build_no_agent() {
    local c=1234.default.php.puppet.example.org
    classify "$c" FACTER_cartridge_build=true
    expect_classes "base php" "$c"
    [ "$EDGES" = "Class[Base] -> Class[Php];" ] || fail "class order edges: '$EDGES'"
}

# write_manifest: the test manifest $CASE_DIR/test.pp from stdin. Test manifests declare
# classes, then copy attributes of the declared resources into files under
# $CASE_DIR/out, tagged cartridge_test_out: the only resources applied.
write_manifest() {
    cat >"$CASE_DIR/test.pp"
}

t_php_resources() {
    local out=$CASE_DIR/out
    write_manifest <<EOF
include base
include php
\$p = Service['puppet']
file { '$out/puppet': content => "puppet ensure=\${\$p['ensure']} enable=\${\$p['enable']} provider=\${\$p['provider']}\n", tag => 'cartridge_test_out' }
file { '$out/base-packages': content => "\${Package['ca-certificates']['ensure']} \${Package['curl']['ensure']}\n", tag => 'cartridge_test_out' }
\$svc = Service['apache2']
\$attrs = "apache2 ensure=\${\$svc['ensure']} enable=\${\$svc['enable']} provider=\${\$svc['provider']}\n"
file { '$out/attrs': content => \$attrs, tag => 'cartridge_test_out' }
file { '$out/index.php': content => File['/var/www/html/index.php']['content'], tag => 'cartridge_test_out' }
file { '$out/vhost': content => File['/etc/apache2/sites-available/000-default.conf']['content'], tag => 'cartridge_test_out' }
file { '$out/index.html': content => "\${File['/var/www/html/index.html']['ensure']}\n", tag => 'cartridge_test_out' }
file { '$out/packages': content => "\${Package['apache2']['ensure']} \${Package['libapache2-mod-php']['install_options']}\n", tag => 'cartridge_test_out' }
EOF
    papply 1234.default.php.puppet.example.org "$CASE_DIR/test.pp" cartridge_test_out || return
    printf 'apache2 ensure=running enable=true provider=systemd\n' | assert_file "$out/attrs"
    printf 'puppet ensure=stopped enable=false provider=systemd\n' | assert_file "$out/puppet"
    printf 'installed installed\n' | assert_file "$out/base-packages"
    printf 'PHPOK <?php echo PHP_VERSION; ?>\n' | assert_file "$out/index.php"
    printf 'absent\n' | assert_file "$out/index.html"
    printf 'installed [--no-install-recommends]\n' | assert_file "$out/packages"
    assert_file "$out/vhost" <<'EOF'
# Managed by Puppet (module php).
<VirtualHost *:80>
	ServerAdmin webmaster@localhost
	DocumentRoot /var/www/html
	DirectoryIndex index.php index.html

	<Directory /var/www/html>
		Options -Indexes +FollowSymLinks
		AllowOverride None
		Require all granted
	</Directory>

	ErrorLog ${APACHE_LOG_DIR}/error.log
	CustomLog ${APACHE_LOG_DIR}/access.log combined
</VirtualHost>
EOF
}

t_php_build_mode_and_docroot() {
    local out=$CASE_DIR/out
    write_manifest <<EOF
include base
class { 'php': docroot => '/srv/www' }
\$svc = Service['apache2']
\$attrs = "apache2 ensure=\${\$svc['ensure']} enable=\${\$svc['enable']} provider=\${\$svc['provider']}\n"
file { '$out/attrs': content => \$attrs, tag => 'cartridge_test_out' }
file { '$out/index': content => "\${File['/srv/www/index.php']['content']}\${File['/srv/www']['ensure']}\n", tag => 'cartridge_test_out' }
\$p = Service['puppet']
file { '$out/puppet': content => "puppet ensure=\${\$p['ensure']} enable=\${\$p['enable']} provider=\${\$p['provider']}\n", tag => 'cartridge_test_out' }
EOF
    FACTER_cartridge_build=true papply 1234.default.php.puppet.example.org "$CASE_DIR/test.pp" cartridge_test_out || return
    # while building: enabled through systemd, never started or stopped
    printf 'apache2 ensure= enable=true provider=systemd\n' | assert_file "$out/attrs"
    printf 'puppet ensure= enable=false provider=systemd\n' | assert_file "$out/puppet"
    printf 'PHPOK <?php echo PHP_VERSION; ?>\ndirectory\n' | assert_file "$out/index"
}

# agent_manifest DECLARATION: writes agent.conf, the repo file (or "none") and the
# service attributes of the agent class into $CASE_DIR/out.
agent_manifest() {
    local out=$CASE_DIR/out
    write_manifest <<EOF
$1
file { '$out/agent.conf': content => File['/etc/cartridge-agent/agent.conf']['content'], tag => 'cartridge_test_out' }
\$repo = defined(File['/etc/apt/sources.list.d/cartridge-agent.list']) ? {
  true    => File['/etc/apt/sources.list.d/cartridge-agent.list']['content'],
  default => "none\n",
}
file { '$out/repo': content => \$repo, tag => 'cartridge_test_out' }
\$s = Service['cartridge-agent']
file { '$out/service': content => "cartridge-agent ensure=\${\$s['ensure']} enable=\${\$s['enable']} provider=\${\$s['provider']}\n", tag => 'cartridge_test_out' }
\$e = Exec['cartridge-agent apt-get update']
file { '$out/exec': content => "\${\$e['command']} refreshonly=\${\$e['refreshonly']}\n", tag => 'cartridge_test_out' }
EOF
}

t_agent_from_payload_fact() {
    local out=$CASE_DIR/out
    # what cartridge-init writes; TOKEN must not reach the fact
    printf '%s\n' 'SERVICE_NAME=php' 'MB_IP=10.0.2.100' 'MB_PORT=1884' 'PORTS=80|443' \
        'PACKAGE_REPO=deb [trusted=yes] http://10.0.2.102/ ./' 'TOKEN=eyJsecret' 'LB_CLUSTER_ID=null' \
        >"$CASE_DIR/launch-params"
    agent_manifest "include agent"
    CARTRIDGE_LAUNCH_PARAMS=$CASE_DIR/launch-params \
        papply 1234.default.php.puppet.example.org "$CASE_DIR/test.pp" cartridge_test_out || return
    assert_file "$out/agent.conf" <<'EOF'
# Managed by Puppet (module agent). `key = value` lines; see docs/image-contract.md.
# At run time the payload wins: MB_IP+MB_PORT over mb.urls, PORTS over ports,
# SERVICE_NAME over service.name.
mb.urls = 10.0.2.100:1884
service.name = php
ports = 80|443
listen.address = localhost
port.check.timeout = 600
stats.interval = 15
payload.file = /var/lib/cartridge/launch-params
EOF
    printf '# Managed by Puppet (module agent)\ndeb [trusted=yes] http://10.0.2.102/ ./\n' | assert_file "$out/repo"
    printf 'cartridge-agent ensure=running enable=true provider=systemd\n' | assert_file "$out/service"
    printf '/usr/bin/apt-get update refreshonly=true\n' | assert_file "$out/exec"
}

t_agent_without_payload() {
    local out=$CASE_DIR/out
    agent_manifest "class { 'agent': service_name => 'php' }"
    CARTRIDGE_LAUNCH_PARAMS=$CASE_DIR/no-such-file \
        papply 1234.default.php.puppet.example.org "$CASE_DIR/test.pp" cartridge_test_out || return
    assert_file "$out/agent.conf" <<'EOF'
# Managed by Puppet (module agent). `key = value` lines; see docs/image-contract.md.
# At run time the payload wins: MB_IP+MB_PORT over mb.urls, PORTS over ports,
# SERVICE_NAME over service.name.
mb.urls = 127.0.0.1:1883
service.name = php
listen.address = localhost
port.check.timeout = 600
stats.interval = 15
payload.file = /var/lib/cartridge/launch-params
EOF
    printf 'none\n' | assert_file "$out/repo"
}

t_agent_mb_ip_without_port_and_nulls() {
    local out=$CASE_DIR/out
    printf '%s\n' 'MB_IP=10.0.2.100' 'MB_PORT=null' 'PORTS=' 'PACKAGE_REPO=null' >"$CASE_DIR/launch-params"
    agent_manifest "include agent"
    CARTRIDGE_LAUNCH_PARAMS=$CASE_DIR/launch-params \
        papply 1234.default.php.puppet.example.org "$CASE_DIR/test.pp" cartridge_test_out || return
    grep -qxF 'mb.urls = 10.0.2.100:1883' "$out/agent.conf" || fail "mb.urls: $(grep mb.urls "$out/agent.conf")"
    ! grep -qE '^(ports|service\.name) =' "$out/agent.conf" || fail "empty/absent values rendered"
    printf 'none\n' | assert_file "$out/repo"
}

t_agent_rejects_bad_payload() {
    # a newline cannot reach agent.conf: PORTS must be digits and pipes
    printf '%s\n' 'PORTS=80 mb.urls = evil:1' >"$CASE_DIR/launch-params"
    agent_manifest "include agent"
    CARTRIDGE_LAUNCH_PARAMS=$CASE_DIR/launch-params \
        puppet apply --color=false --confdir "$CASE_DIR/c" --vardir "$CASE_DIR/v" --codedir "$CASE_DIR/d" \
        --logdir "$CASE_DIR/l" --rundir "$CASE_DIR/r" --publicdir "$CASE_DIR/p" --ssldir "$CASE_DIR/s" \
        --modulepath "$MODULES" --tags cartridge_test_out "$CASE_DIR/test.pp" 2>&1 | filter_noise >"$CASE_DIR/apply.out"
    grep -q "parameter 'ports' expects" "$CASE_DIR/apply.out" || { fail "bad PORTS accepted"; cat "$CASE_DIR/apply.out"; }
    [ ! -e "$CASE_DIR/out/agent.conf" ] || fail "agent.conf written from a bad payload"
}

t_fact_cartridge_payload() {
    command -v facter >/dev/null || { fail "facter not installed"; return; }
    printf '%s\r\n' 'SERVICE_NAME=php' 'MB_IP=10.0.2.100' 'PORTS=80|443' 'REPO_URL=https://x/r.git?a=b=c' \
        'TOKEN=eyJsecret' 'CARTRIDGE_KEY=k' 'MB_PASSWORD=p' 'GROUP_NAME=null' 'EMPTY=' 'bad-key=1' \
        'noequals' >"$CASE_DIR/launch-params"
    CARTRIDGE_LAUNCH_PARAMS=$CASE_DIR/launch-params \
        facter --custom-dir "$MODULES/agent/lib/facter" --json cartridge_payload 2>&1 |
        filter_noise >"$CASE_DIR/fact.json"
    /usr/bin/python3 - "$CASE_DIR/fact.json" <<'EOF' || fail "fact: $(cat "$CASE_DIR/fact.json")"
import json, sys
got = json.load(open(sys.argv[1]))["cartridge_payload"]
want = {"SERVICE_NAME": "php", "MB_IP": "10.0.2.100", "PORTS": "80|443", "REPO_URL": "https://x/r.git?a=b=c"}
sys.exit(0 if got == want else 1)
EOF
    CARTRIDGE_LAUNCH_PARAMS=$CASE_DIR/none facter --custom-dir "$MODULES/agent/lib/facter" --json cartridge_payload 2>&1 |
        filter_noise >"$CASE_DIR/fact-none.json"
    /usr/bin/python3 -c 'import json,sys; sys.exit(0 if json.load(open(sys.argv[1])).get("cartridge_payload") is None else 1)' \
        "$CASE_DIR/fact-none.json" || fail "fact without a file: $(cat "$CASE_DIR/fact-none.json")"
}

t_host_untouched() {
    local d changed
    for d in /etc/puppet /var/cache/puppet /var/lib/puppet; do
        [ -d "$d" ] || continue
        changed=$(find "$d" -newer "$WORK/stamp" 2>/dev/null | head -n 5)
        [ -z "$changed" ] || fail "tests changed $d: $changed"
    done
}

CASES=(
    t_validate
    t_classify_php t_classify_service_in_domain t_classify_php_with_php_domain
    t_classify_unknown_service t_classify_service_named_default t_classify_other_deployment
    t_classify_prefix_is_not_enough t_classify_short_certname t_classify_build_no_agent
    t_php_resources t_php_build_mode_and_docroot
    t_agent_from_payload_fact t_agent_without_payload t_agent_mb_ip_without_port_and_nulls
    t_agent_rejects_bad_payload t_fact_cartridge_payload
    t_host_untouched
)

for c in "${CASES[@]}"; do
    name=${c#t_}
    if ! selected "$name"; then SKIPPED=$((SKIPPED + 1)); continue; fi
    begin "$name"
    "$c"
    end
done

echo
echo "puppet: $PASSED passed, $FAILED failed, $SKIPPED skipped"
if [ "$FAILED" -ne 0 ]; then
    printf 'failed: %s\n' "${FAILED_CASES[@]}"
    exit 1
fi
exit 0
