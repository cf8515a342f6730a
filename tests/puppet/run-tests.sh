#!/bin/bash
# Tests of puppet/ (site.pp classification, modules base/php/agent and the catalogue's
# java/tomcat/mysql/wordpress/ruby, wordpress-db-init, fact cartridge_payload).
# Usage: tests/puppet/run-tests.sh [CASE-NAME-SUBSTRING]
# Needs puppet-agent 7 (Debian's `puppet`, `facter`, `ruby`); puppet-lint when installed.
# Nothing is applied to this host: catalogs are compiled with `puppet apply` whose only
# applied resources are files under a private temporary directory (--tags), with private
# --confdir/--vardir/--codedir/..., so /etc/puppet and /var/cache/puppet are not touched.
# Exit status 0 when every case passed; on failure the work directory is kept.
# shellcheck disable=SC2317  # cases and helpers are called indirectly
set -u -o pipefail
shopt -s lastpipe # as tests/harness/asserts.sh does; stated here for shellcheck

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
PUPPET_DIR=$REPO/puppet
SITE=$PUPPET_DIR/manifests/site.pp
MODULES=$PUPPET_DIR/modules
FILTER=${1:-}
# shellcheck source=tests/harness/asserts.sh
. "$REPO/tests/harness/asserts.sh"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/cartridge-puppet-tests.XXXXXX")
touch "$WORK/stamp"

cleanup() {
    if [ "$FAILED" -eq 0 ]; then rm -rf "$WORK"; else echo "work directory kept: $WORK"; fi
}
trap cleanup EXIT

if ! command -v puppet >/dev/null; then
    echo "puppet is not installed (Debian package puppet-agent; scripts/install-deps test)"
    exit 1
fi

begin() {
    case_reset "$1"
    CASE_DIR=$WORK/$CASE
    mkdir -p "$CASE_DIR/out"
}

# Facter complains about /proc/1/environ in this sandbox (PID 1 is not init): noise.
filter_noise() { grep -v -e '/proc/1/environ' -e '^$' || true; }

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

# expect_chain "CLASS CLASS...": EDGES is exactly the chain CLASS -> CLASS -> ...
expect_chain() {
    local -a chain
    read -ra chain <<<"$1"
    local i want=""
    for ((i = 0; i + 1 < ${#chain[@]}; i++)); do
        want+="Class[${chain[i]^}] -> Class[${chain[i + 1]^}]"$'\n'
    done
    want=$(printf '%s' "$want" | sort | tr '\n' ';')
    [ "$EDGES" = "$want" ] || fail "class order edges: '$EDGES', expected '$want'"
}

# template_classes YAML: dependent_apps then server_apps of a cartridge file.
template_classes() {
    ruby -ryaml -e 'y = YAML.safe_load(File.read(ARGV[0])); puts (Array(y["dependent_apps"]) + Array(y["server_apps"])).join(" ")' "$1"
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
    # The original /php/ regex matched the master's domain: this is a mysql node, not php.
    local c=1234.default.mysql.php.example.org
    classify "$c"
    expect_classes "base mysql agent" "$c"
    expect_no_unknown_notice "$c"
    # and a wordpress node under a domain naming its dependent app
    c=1234.default.wordpress.mysql.example.org
    classify "$c"
    expect_classes "base mysql wordpress agent" "$c"
    expect_chain "base mysql wordpress agent"
}

t_classify_php_with_php_domain() {
    local c=1234.default.php.php-hosting.example.org
    classify "$c"
    expect_classes "base php agent" "$c"
}

t_classify_unknown_service() {
    # unknown, and containing a known service name, which does not make it that service
    local c=1234.default.mysql-backup.puppet.example.org
    classify "$c"
    expect_classes "base" "$c"
    expect_unknown_notice mysql-backup "$c"
}

t_classify_deployment_named_like_a_service() {
    # label 1 is the deployment: a deployment called "mysql" does not make a mysql node
    local c=1234.mysql.php.puppet.example.org
    classify "$c"
    expect_classes "base php agent" "$c"
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

t_classify_templates() {
    # Every cartridge in templates/: a node of that service gets base, then exactly the
    # classes its full image build applies (dependent_apps, server_apps), then agent.
    local yaml type classes c n=0
    for yaml in "$REPO"/templates/*.yaml; do
        type=$(ruby -ryaml -e 'puts YAML.safe_load(File.read(ARGV[0]))["type"]' "$yaml")
        classes=$(template_classes "$yaml")
        [ -n "$classes" ] || { fail "$yaml has no classes"; continue; }
        c=1234.default.$type.puppet.example.org
        classify "$c"
        expect_classes "base $classes agent" "$c"
        expect_chain "base $classes agent"
        expect_no_unknown_notice "$c"
        n=$((n + 1))
    done
    [ "$n" -ge 5 ] || fail "only $n templates"
}

t_classify_templates_build_mode() {
    # The same while building a full image: no agent class (the image has the agent).
    # Templates with dependent apps only: t_classify_build_no_agent covers a single class.
    local yaml type classes c
    for yaml in "$REPO"/templates/*.yaml; do
        type=$(ruby -ryaml -e 'puts YAML.safe_load(File.read(ARGV[0]))["type"]' "$yaml")
        classes=$(template_classes "$yaml")
        [[ $classes == *" "* ]] || continue
        c=1234.default.$type.puppet.example.org
        classify "$c" FACTER_cartridge_build=true
        expect_classes "base $classes" "$c"
        expect_chain "base $classes"
    done
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
\$attrs = "apache2 ensure=\${\$svc['ensure']} enable=\${\$svc['enable']} provider=\${\$svc['provider']}\nrequire=\${\$svc['require']} subscribe=\${\$svc['subscribe']}\n"
file { '$out/attrs': content => \$attrs, tag => 'cartridge_test_out' }
file { '$out/index.php': content => File['/var/www/html/index.php']['content'], tag => 'cartridge_test_out' }
file { '$out/vhost': content => File['/etc/apache2/sites-available/000-default.conf']['content'], tag => 'cartridge_test_out' }
file { '$out/index.html': content => "\${File['/var/www/html/index.html']['ensure']}\n", tag => 'cartridge_test_out' }
file { '$out/packages': content => "\${Package['apache2']['ensure']} \${Package['libapache2-mod-php']['install_options']}\n", tag => 'cartridge_test_out' }
EOF
    papply 1234.default.php.puppet.example.org "$CASE_DIR/test.pp" cartridge_test_out || return
    assert_file "$out/attrs" <<'EOF'
apache2 ensure=running enable=true provider=systemd
require=[] subscribe=[Package[apache2], Package[libapache2-mod-php], File[/etc/apache2/sites-available/000-default.conf]]
EOF
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
\$attrs = "apache2 ensure=\${\$svc['ensure']} enable=\${\$svc['enable']} provider=\${\$svc['provider']}\nrequire=\${\$svc['require']} subscribe=\${\$svc['subscribe']}\n"
file { '$out/attrs': content => \$attrs, tag => 'cartridge_test_out' }
file { '$out/index': content => "\${File['/srv/www/index.php']['content']}\${File['/srv/www']['ensure']}\n", tag => 'cartridge_test_out' }
\$p = Service['puppet']
file { '$out/puppet': content => "puppet ensure=\${\$p['ensure']} enable=\${\$p['enable']} provider=\${\$p['provider']}\n", tag => 'cartridge_test_out' }
EOF
    FACTER_cartridge_build=true papply 1234.default.php.puppet.example.org "$CASE_DIR/test.pp" cartridge_test_out || return
    # while building: enabled through systemd, never started or stopped
    # building: the inputs only order the service; nothing restarts it in a chroot
    assert_file "$out/attrs" <<'EOF'
apache2 ensure= enable=true provider=systemd
require=[Package[apache2], Package[libapache2-mod-php], File[/etc/apache2/sites-available/000-default.conf]] subscribe=
EOF
    printf 'puppet ensure= enable=false provider=systemd\n' | assert_file "$out/puppet"
    printf 'PHPOK <?php echo PHP_VERSION; ?>\ndirectory\n' | assert_file "$out/index"
}

# catalogue_manifest DECLARATIONS: the classes of the catalogue (tomcat, java, mysql,
# wordpress, ruby: they fit in one catalog, so one Puppet run checks them all), then their
# services' attributes, package options and files written into $CASE_DIR/out.
catalogue_manifest() {
    local out=$CASE_DIR/out
    write_manifest <<EOF
$1
\$services = ['tomcat10', 'mariadb', 'apache2', 'wordpress-db-init', 'rack-app'].map |\$n| {
  \$s = Service[\$n]
  "\${n} ensure=\${\$s['ensure']} enable=\${\$s['enable']} provider=\${\$s['provider']}"
}
file { '$out/services': content => "\${\$services.join("\n")}\n", tag => 'cartridge_test_out' }
\$packages = ['default-jre-headless', 'tomcat10', 'mariadb-server', 'apache2', 'libapache2-mod-php',
  'php-mysql', 'wordpress', 'wordpress-theme-twentytwentythree', 'ruby-rack', 'puma'].map |\$n| {
  "\${n} \${Package[\$n]['ensure']} \${Package[\$n]['install_options']}"
}
file { '$out/packages': content => "\${\$packages.join("\n")}\n", tag => 'cartridge_test_out' }
\$files = {
  'server.xml'       => '/etc/tomcat10/server.xml',
  'index.jsp'        => '/var/lib/tomcat10/webapps/ROOT/index.jsp',
  'mysql.cnf'        => '/etc/mysql/mariadb.conf.d/60-cartridge.cnf',
  'wordpress.cnf'    => '/etc/mysql/mariadb.conf.d/70-wordpress.cnf',
  'vhost'            => '/etc/apache2/sites-available/000-default.conf',
  'db-init.service'  => '/etc/systemd/system/wordpress-db-init.service',
  'config.ru'        => '/srv/rack-app/config.ru',
  'rack-app.service' => '/etc/systemd/system/rack-app.service',
}
\$files.each |\$name, \$path| {
  file { "$out/\${name}": content => File[\$path]['content'], tag => 'cartridge_test_out' }
}
\$modes = ['/etc/tomcat10/server.xml', '/usr/local/sbin/wordpress-db-init'].map |\$p| {
  "\${p} \${File[\$p]['owner']}:\${File[\$p]['group']} \${File[\$p]['mode']}"
}
file { '$out/modes': content => "\${\$modes.join("\n")}\n", tag => 'cartridge_test_out' }
file { '$out/absent': content => "\${File['/var/lib/tomcat10/webapps/ROOT/index.html']['ensure']}\n", tag => 'cartridge_test_out' }
# Puppet never holds a database password: no resource writes the WordPress config.
file { '$out/wp-config': content => "\${defined(File['/etc/wordpress/config-default.php'])}\n", tag => 'cartridge_test_out' }
\$exec = defined(Exec['wordpress-db-init']) ? {
  true    => "\${Exec['wordpress-db-init']['command']}\ncreates=\${Exec['wordpress-db-init']['creates']}\n",
  default => "none\n",
}
file { '$out/exec': content => \$exec, tag => 'cartridge_test_out' }
EOF
}

t_catalogue_resources() {
    local out=$CASE_DIR/out
    catalogue_manifest "include base
include java
class { 'tomcat': port => 9090 }
include mysql
include wordpress
class { 'ruby': port => 4000 }"
    papply 1234.default.wordpress.puppet.example.org "$CASE_DIR/test.pp" cartridge_test_out || return
    assert_file "$out/services" <<'EOF'
tomcat10 ensure=running enable=true provider=systemd
mariadb ensure=running enable=true provider=systemd
apache2 ensure=running enable=true provider=systemd
wordpress-db-init ensure= enable=true provider=systemd
rack-app ensure=running enable=true provider=systemd
EOF
    assert_file "$out/packages" <<'EOF'
default-jre-headless installed [--no-install-recommends]
tomcat10 installed [--no-install-recommends]
mariadb-server installed [--no-install-recommends]
apache2 installed [--no-install-recommends]
libapache2-mod-php installed [--no-install-recommends]
php-mysql installed [--no-install-recommends]
wordpress installed [--no-install-recommends]
wordpress-theme-twentytwentythree installed [--no-install-recommends]
ruby-rack installed [--no-install-recommends]
puma installed [--no-install-recommends]
EOF
    grep -qF '<Connector port="9090" protocol="HTTP/1.1"' "$out/server.xml" || fail "server.xml: no connector on 9090"
    ! grep -q 'address=' "$out/server.xml" || fail "server.xml: an address without the parameter"
    printf '<%%@ page contentType="text/plain" %%>TOMCATOK <%%= application.getServerInfo() %%>\n' | assert_file "$out/index.jsp"
    assert_file "$out/mysql.cnf" <<'EOF'
# Managed by Puppet (module mysql). Read after Debian's 50-server.cnf, so it wins.
[mysqld]
bind-address = 0.0.0.0
port = 3306
EOF
    grep -qxF 'bind-address = 127.0.0.1' "$out/wordpress.cnf" || fail "70-wordpress.cnf: $(cat "$out/wordpress.cnf")"
    grep -qF 'DocumentRoot /usr/share/wordpress' "$out/vhost" || fail "vhost: $(cat "$out/vhost")"
    grep -qxF 'ExecStart=/usr/local/sbin/wordpress-db-init --payload /var/lib/cartridge/launch-params --config /etc/wordpress/config-default.php --marker /var/lib/cartridge/wordpress-db-initialized --db-name wordpress --db-user wordpress --db-host localhost' \
        "$out/db-init.service" || fail "wordpress-db-init.service ExecStart: $(grep ExecStart "$out/db-init.service")"
    grep -qxF 'ConditionPathExists=!/var/lib/cartridge/wordpress-db-initialized' "$out/db-init.service" ||
        fail "wordpress-db-init.service: no condition on the marker"
    grep -qxF 'After=network-online.target cartridge-init.service mariadb.service' "$out/db-init.service" ||
        fail "wordpress-db-init.service: not after cartridge-init and mariadb"
    grep -qxF 'ExecStart=/usr/bin/puma --environment production --bind tcp://0.0.0.0:4000 --threads 0:5 /srv/rack-app/config.ru' \
        "$out/rack-app.service" || fail "rack-app.service ExecStart: $(grep ExecStart "$out/rack-app.service")"
    grep -qxF 'DynamicUser=yes' "$out/rack-app.service" || fail "rack-app.service: not a dynamic user"
    grep -qF '"RUBYOK #{RUBY_VERSION}\n"' "$out/config.ru" || fail "config.ru: $(cat "$out/config.ru")"
    printf '/etc/tomcat10/server.xml root:tomcat 0640\n/usr/local/sbin/wordpress-db-init root:root 0755\n' | assert_file "$out/modes"
    printf 'absent\n' | assert_file "$out/absent"
    printf 'false\n' | assert_file "$out/wp-config"
    printf '%s\n' '/usr/local/sbin/wordpress-db-init --payload /var/lib/cartridge/launch-params --config /etc/wordpress/config-default.php --marker /var/lib/cartridge/wordpress-db-initialized --db-name wordpress --db-user wordpress --db-host localhost' \
        'creates=/var/lib/cartridge/wordpress-db-initialized' | assert_file "$out/exec"
}

t_catalogue_build_mode() {
    local out=$CASE_DIR/out
    catalogue_manifest "include base
include java
include tomcat
include mysql
include wordpress
include ruby"
    FACTER_cartridge_build=true papply 1234.default.wordpress.puppet.example.org "$CASE_DIR/test.pp" cartridge_test_out || return
    # while building: units enabled through systemd, nothing started, no first-boot script run
    assert_file "$out/services" <<'EOF'
tomcat10 ensure= enable=true provider=systemd
mariadb ensure= enable=true provider=systemd
apache2 ensure= enable=true provider=systemd
wordpress-db-init ensure= enable=true provider=systemd
rack-app ensure= enable=true provider=systemd
EOF
    printf 'none\n' | assert_file "$out/exec"
    printf 'false\n' | assert_file "$out/wp-config"
    grep -qF '<Connector port="8080" protocol="HTTP/1.1"' "$out/server.xml" || fail "server.xml: no connector on 8080"
    grep -qF -- '--bind tcp://0.0.0.0:3000 ' "$out/rack-app.service" || fail "rack-app.service: not on 3000"
}

t_catalogue_rejects_bad_parameters() {
    # values that reach config files and command lines are validated
    write_manifest <<'EOF'
class { 'wordpress': db_host => 'db; rm -rf /' }
EOF
    puppet apply --noop --color=false --confdir "$CASE_DIR/c" --vardir "$CASE_DIR/v" --codedir "$CASE_DIR/d" \
        --logdir "$CASE_DIR/l" --rundir "$CASE_DIR/r" --publicdir "$CASE_DIR/p" --ssldir "$CASE_DIR/s" \
        --modulepath "$MODULES" --tags cartridge_test_out "$CASE_DIR/test.pp" 2>&1 | filter_noise >"$CASE_DIR/apply.out"
    grep -q "parameter 'db_host' expects" "$CASE_DIR/apply.out" || { fail "bad db_host accepted"; cat "$CASE_DIR/apply.out"; }
}

# ---- wordpress-db-init (the first-boot script of module wordpress), on this host with a
# fake MariaDB client that records its arguments and its standard input.
DB_INIT=$MODULES/wordpress/files/wordpress-db-init

# db_init [PAYLOAD LINES...]: writes the payload (CRLF, as some metadata services do) when
# given, and runs the script on files under $CASE_DIR. Output in $OUT, status in $RC.
db_init() {
    local d=$CASE_DIR
    mkdir -p "$d/etc" "$d/state"
    if [ ! -x "$d/fake-mariadb" ]; then
        cat >"$d/fake-mariadb" <<'EOF'
#!/bin/bash
printf '%s\n' "$*" >>"$(dirname "$0")/client-args"
case " $* " in *" -e "*) exit 0 ;; esac
cat >>"$(dirname "$0")/client-sql"
EOF
        chmod +x "$d/fake-mariadb"
    fi
    if [ $# -gt 0 ]; then
        printf '%s\r\n' "$@" >"$d/launch-params"
        chmod 600 "$d/launch-params"
    fi
    OUT=$d/db-init.out
    bash "$DB_INIT" --payload "$d/launch-params" --config "$d/etc/config-default.php" \
        --marker "$d/state/wordpress-db-initialized" --mysql-client "$d/fake-mariadb" --wait-seconds 2 >"$OUT" 2>&1
    RC=$?
}

# config_value KEY: the PHP string literal defined for KEY in the written config.
config_value() { sed -n "s/^define('$1', \(.*\));\$/\1/p" "$CASE_DIR/etc/config-default.php"; }

needs_root() {
    [ "$(id -u)" = 0 ] && return 0
    echo "    (needs root for chown root:www-data: skipped)"
    return 1
}

t_db_init_generated_password() {
    needs_root || return
    db_init
    [ "$RC" = 0 ] || { fail "exit $RC"; cat "$OUT"; return; }
    grep -qx 'wordpress-db-init: local database wordpress and user wordpress ready (password generated)' "$OUT" ||
        fail "output: $(cat "$OUT")"
    local f=$CASE_DIR/etc/config-default.php pw
    [ "$(stat -c '%a %U %G' "$f")" = "640 root www-data" ] || fail "config: $(stat -c '%a %U %G' "$f")"
    pw=$(config_value DB_PASSWORD)
    [[ $pw =~ ^\'[0-9a-f]{48}\'$ ]] || fail "generated password is not 48 hex digits"
    pw=${pw//\'/}
    ! grep -qF "$pw" "$OUT" || fail "the password was printed"
    ! grep -qF "$pw" "$CASE_DIR/client-args" || fail "the password was on the client's command line"
    grep -qxF "CREATE USER IF NOT EXISTS 'wordpress'@'localhost' IDENTIFIED BY '$pw';" "$CASE_DIR/client-sql" ||
        fail "SQL: $(sed "s/$pw/<pw>/g" "$CASE_DIR/client-sql")"
    # shellcheck disable=SC2016  # backquotes of SQL
    grep -qxF 'CREATE DATABASE IF NOT EXISTS `wordpress` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;' "$CASE_DIR/client-sql" ||
        fail "no CREATE DATABASE"
    grep -qxF "GRANT ALL PRIVILEGES ON \`wordpress\`.* TO 'wordpress'@'localhost';" "$CASE_DIR/client-sql" || fail "no GRANT"
    [ "$(config_value DB_HOST)" = "'localhost'" ] || fail "DB_HOST $(config_value DB_HOST)"
    local salts
    salts=$(grep -cE "^define\('(AUTH|SECURE_AUTH|LOGGED_IN|NONCE)_(KEY|SALT)', '[0-9a-f]{64}'\);$" "$f")
    [ "$salts" = 8 ] || fail "$salts keys and salts, expected 8"
    [ -s "$CASE_DIR/state/wordpress-db-initialized" ] || fail "no marker"
    # second run: nothing happens
    cp "$CASE_DIR/client-sql" "$CASE_DIR/client-sql.first"
    db_init
    if [ "$RC" != 0 ] || ! grep -q 'already initialized' "$OUT"; then fail "second run: exit $RC: $(cat "$OUT")"; fi
    cmp -s "$CASE_DIR/client-sql" "$CASE_DIR/client-sql.first" || fail "second run ran SQL"
}

t_db_init_remote_from_payload() {
    needs_root || return
    # values are data: quotes, backslashes and $(...) reach the config escaped, never run
    db_init 'SERVICE_NAME=wordpress' 'DB_HOST=db.example.org:3307' 'DB_NAME=bad name;' \
        'DB_USER=wp_user' "DB_PASSWORD=p'q\\r\"s\$(touch $CASE_DIR/pwned)" 'DB_PORT=null'
    [ "$RC" = 0 ] || { fail "exit $RC"; cat "$OUT"; return; }
    [ ! -e "$CASE_DIR/pwned" ] || fail "a payload value was executed"
    [ ! -e "$CASE_DIR/client-args" ] || fail "the client ran for a remote database"
    [ "$(config_value DB_HOST)" = "'db.example.org:3307'" ] || fail "DB_HOST $(config_value DB_HOST)"
    [ "$(config_value DB_NAME)" = "'wordpress'" ] || fail "DB_NAME $(config_value DB_NAME)"
    [ "$(config_value DB_USER)" = "'wp_user'" ] || fail "DB_USER $(config_value DB_USER)"
    [ "$(config_value DB_PASSWORD)" = "'p\\'q\\\\r\"s\$(touch $CASE_DIR/pwned)'" ] ||
        fail "DB_PASSWORD literal: $(config_value DB_PASSWORD)"
    grep -qx 'wordpress-db-init: payload DB_NAME is not a valid database name: ignored' "$OUT" || fail "output: $(cat "$OUT")"
    grep -qx 'wordpress-db-init: remote database wordpress on db.example.org:3307, user wp_user (password from the payload)' "$OUT" ||
        fail "output: $(cat "$OUT")"
    ! grep -qF -e "p'q" -e 'bad name' "$OUT" || fail "a payload value was printed"
}

t_db_init_local_with_payload_password() {
    needs_root || return
    db_init 'DB_PASSWORD=s3cr3t-from-payload' 'DB_HOST=null'
    [ "$RC" = 0 ] || { fail "exit $RC"; cat "$OUT"; return; }
    [ "$(config_value DB_PASSWORD)" = "'s3cr3t-from-payload'" ] || fail "DB_PASSWORD not from the payload"
    grep -qxF "ALTER USER 'wordpress'@'localhost' IDENTIFIED BY 's3cr3t-from-payload';" "$CASE_DIR/client-sql" ||
        fail "SQL does not set the payload password"
    ! grep -qF 's3cr3t' "$OUT" "$CASE_DIR/client-args" || fail "the password was printed or on a command line"
}

t_db_init_remote_without_password() {
    db_init 'DB_HOST=db.example.org'
    [ "$RC" = 1 ] || fail "exit $RC, expected 1"
    grep -q 'DB_HOST db.example.org is a remote database but the payload has no DB_PASSWORD' "$OUT" || fail "output: $(cat "$OUT")"
    [ ! -e "$CASE_DIR/etc/config-default.php" ] || fail "config written"
    [ ! -e "$CASE_DIR/state/wordpress-db-initialized" ] || fail "marked as done"
}

t_module_scripts_lint() {
    local f
    for f in "$MODULES"/*/files/*; do
        [ -f "$f" ] || continue
        head -n1 "$f" | grep -q '^#!.*bash' || continue
        bash -n "$f" || fail "bash -n $f"
        if command -v shellcheck >/dev/null; then
            shellcheck "$f" >"$CASE_DIR/shellcheck.out" 2>&1 || { fail "shellcheck $f"; cat "$CASE_DIR/shellcheck.out"; }
        fi
    done
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
file { '$out/service': content => "cartridge-agent ensure=\${\$s['ensure']} enable=\${\$s['enable']} provider=\${\$s['provider']}\nstart=\${\$s['start']} restart=\${\$s['restart']}\nrequire=\${\$s['require']} subscribe=\${\$s['subscribe']}\n", tag => 'cartridge_test_out' }
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
    # --no-block: see puppet/modules/agent/manifests/init.pp (it runs inside cartridge-init)
    assert_file "$out/service" <<'EOF'
cartridge-agent ensure=running enable=true provider=systemd
start=/bin/systemctl start --no-block cartridge-agent.service restart=/bin/systemctl restart --no-block cartridge-agent.service
require=[Package[cartridge-agent]] subscribe=[File[/etc/cartridge-agent/agent.conf]]
EOF
    printf '/usr/bin/apt-get update -o Dir::Etc::sourcelist=/etc/apt/sources.list.d/cartridge-agent.list -o Dir::Etc::sourceparts=- -o APT::Get::List-Cleanup=0 refreshonly=true\n' | assert_file "$out/exec"
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
    t_classify_deployment_named_like_a_service t_classify_templates t_classify_templates_build_mode
    t_php_resources t_php_build_mode_and_docroot
    t_catalogue_resources t_catalogue_build_mode t_catalogue_rejects_bad_parameters
    t_db_init_generated_password t_db_init_remote_from_payload t_db_init_local_with_payload_password
    t_db_init_remote_without_password t_module_scripts_lint
    t_agent_from_payload_fact t_agent_without_payload t_agent_mb_ip_without_port_and_nulls
    t_agent_rejects_bad_payload t_fact_cartridge_payload
    t_host_untouched
)

run_cases puppet "${CASES[@]}"
