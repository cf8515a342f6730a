#!/bin/bash
# Checks a full-mode system layer (the tree a full image is made from) in a chroot:
#  1. idempotency: a second `puppet apply` of the cartridge's classes, with the builder's
#     manifest and fact (cartridge_build=true), must change nothing (detailed exit code 0);
#  2. smoke: the cartridge's daemons, started by hand (no systemd in a chroot) as their
#     units would, answer on the cartridge's port with the expected content.
# Usage (as root): check-layer.sh BUILD_IMAGE LAYER_ROOT MODULES_DIR TYPE CLASS...
#   BUILD_IMAGE  the build-image binary: its hidden `__pid1` shim is a PID 1 named
#                "systemd", so Puppet's systemd provider works, exactly as in the build
#   LAYER_ROOT   the layer's root tree, $CACHE/layers/system-<key>/content
#   MODULES_DIR  puppet/modules, the tree the layer was built with
#   TYPE         php, tomcat, mysql, wordpress or ruby: which smoke check
#   CLASS...     the cartridge's dependent_apps then server_apps
# The layer is never written: it is the lower directory of an overlay mounted in a private
# mount namespace; the smoke check runs in a private network namespace (loopback only), so
# ports never clash with the host and nothing reaches the network. Secrets made by the
# checks stay in the overlay, which is deleted. Exit 0 when both checks pass, 1 otherwise,
# 2 on bad usage.
# The smoke checks are scripts for the chroot, kept in single-quoted variables:
# shellcheck disable=SC2016,SC2034
set -u -o pipefail

if [ $# -lt 5 ] || [ "$(id -u)" != 0 ]; then
    echo "usage (as root): $0 BUILD_IMAGE LAYER_ROOT MODULES_DIR TYPE CLASS..." >&2
    exit 2
fi
bi=$(realpath "$1") layer=$(realpath "$2") modules=$(realpath "$3") type=$4
shift 4
if [ ! -x "$bi" ] || [ ! -d "$layer/etc" ] || [ ! -d "$modules" ]; then
    echo "$0: bad arguments" >&2
    exit 2
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/catalogue-check.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/upper" "$work/ovl-work" "$work/root"

# The manifest the builder writes (render_puppet_apply_manifest in builder/plan/plan.cpp).
{
    printf 'include base\n'
    prev=base
    for c in "$@"; do
        printf "include %s\nClass['%s'] -> Class['%s']\n" "$c" "$prev" "$c"
        prev=$c
    done
} >"$work/apply.pp"

# ---------------------------------------------------------------- smoke checks (in the chroot)
common='
set -u -o pipefail
ip link set lo up   # the image'"'"'s iproute2: the host needs none
failed=0
ok() { echo "smoke: ok: $*"; }
bad() { echo "smoke: FAIL: $*"; failed=1; }
# wait_port PORT SECONDS: until something listens on 127.0.0.1:PORT
wait_port() {
    local i
    for ((i = 0; i < $2; i++)); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 1
    done
    return 1
}
# expect_body URL PREFIX: the body starts with PREFIX
expect_body() {
    local body
    body=$(curl -sS --max-time 120 "$1" 2>&1)
    if [[ $body == "$2"* ]]; then ok "$1 -> ${body%%$'\''\n'\''*}"; else bad "$1 -> ${body:0:300}"; fi
}
mkdir -p /run/lock /run/mysqld
chown mysql:mysql /run/mysqld 2>/dev/null || true
start_mariadb() {
    /usr/sbin/mariadbd --user=mysql >/tmp/mariadbd.out 2>&1 &
    if wait_port 3306 60 && mariadb -e "SELECT 1" >/dev/null 2>&1; then
        ok "mariadbd answers on the unix socket (root, no password)"
    else
        bad "mariadbd does not start"; tail -n 20 /tmp/mariadbd.out
    fi
}
# listening_on PORT: the local addresses listening on PORT
listening_on() { ss -Hltn "sport = :$1" | awk "{print \$4}" | sort -u | tr "\n" " "; }
'

smoke_php='
apache2ctl start >/tmp/apache.out 2>&1
wait_port 80 30 || { bad "apache2 does not listen on 80"; cat /tmp/apache.out; }
expect_body http://127.0.0.1/ "PHPOK 8."
'

smoke_tomcat='
# as tomcat10.service: Environment=, ExecStartPre=+ (root), then ExecStart= as User=tomcat
export CATALINA_HOME=/usr/share/tomcat10 CATALINA_BASE=/var/lib/tomcat10 CATALINA_TMPDIR=/tmp
export JAVA_OPTS=-Djava.awt.headless=true
/usr/libexec/tomcat10/tomcat-update-policy.sh
setpriv --reuid=tomcat --regid=tomcat --clear-groups \
    sh /usr/libexec/tomcat10/tomcat-start.sh >/tmp/tomcat.out 2>&1 &
wait_port 8080 180 || { bad "tomcat does not listen on 8080"; tail -n 30 /tmp/tomcat.out; }
expect_body http://127.0.0.1:8080/ "TOMCATOK Apache Tomcat/10."
'

smoke_mysql='
start_mariadb
l=$(listening_on 3306)
[[ $l == *"0.0.0.0:3306"* ]] && ok "listens on $l" || bad "listens on \"$l\", expected 0.0.0.0:3306"
if mariadb --protocol=tcp -h 127.0.0.1 -u root -e "SELECT 1" >/dev/null 2>&1; then
    bad "root logs in over TCP without a password"
else
    ok "root cannot log in over TCP (unix socket only)"
fi
n=$(mariadb -N -e "SELECT COUNT(*) FROM mysql.global_priv WHERE JSON_VALUE(priv, \"$.authentication_string\") NOT IN (\"\", \"invalid\")")
[ "$n" = 0 ] && ok "no account has a password" || bad "$n account(s) have a password"
'

smoke_wordpress='
start_mariadb
l=$(listening_on 3306)
[[ $l == "127.0.0.1:3306 " ]] && ok "local MariaDB listens on $l" || bad "MariaDB listens on \"$l\", expected 127.0.0.1:3306 only"
[ ! -e /etc/wordpress/config-default.php ] && ok "no WordPress config before first boot" || bad "config-default.php in the layer"
# First boot without a payload: generated password (the unit ExecStart line).
cmd=$(sed -n "s/^ExecStart=//p" /etc/systemd/system/wordpress-db-init.service)
out=$($cmd 2>&1) && ok "first boot: ${out//$'\''\n'\''/; }" || bad "wordpress-db-init: $out"
s=$(stat -c "%a %U %G" /etc/wordpress/config-default.php 2>&1)
[ "$s" = "640 root www-data" ] && ok "config-default.php is $s" || bad "config-default.php: $s"
pw=$(sed -n "s/^define(.DB_PASSWORD., .\\([0-9a-f]*\\).);$/\\1/p" /etc/wordpress/config-default.php)
[ ${#pw} = 48 ] && ok "generated password: 48 hex digits" || bad "generated password has ${#pw} characters"
[[ $out != *"$pw"* ]] && ok "the password is not in the output" || bad "the password was printed"
MYSQL_PWD=$pw mariadb --protocol=tcp -h 127.0.0.1 -u wordpress -e "SELECT 1" wordpress >/dev/null 2>&1 &&
    ok "user wordpress logs in with it" || bad "user wordpress cannot log in"
out=$($cmd 2>&1)
[[ $out == *"already initialized"* ]] && ok "second run: nothing to do" || bad "second run: $out"
apache2ctl start >/tmp/apache.out 2>&1
wait_port 80 30 || { bad "apache2 does not listen on 80"; cat /tmp/apache.out; }
code=$(curl -sS -o /dev/null -w "%{http_code} %{redirect_url}" http://127.0.0.1/)
[ "$code" = "302 http://127.0.0.1/wp-admin/install.php" ] && ok "/ -> $code" || bad "/ -> $code"
expect_body http://127.0.0.1/wp-admin/install.php "<!DOCTYPE html>"
# grep reads the whole page: with grep -q, curl could fail writing the rest (exit 23) and
# pipefail then failed a right answer.
curl -sS http://127.0.0.1/wp-admin/install.php | grep "<title>WordPress &rsaquo; Installation" >/dev/null &&
    ok "WordPress talks to its database (installation page)" || bad "no installation page (database?)"
# Payload with a password full of quotes and backslashes: the config and the account must agree.
rm -f /var/lib/cartridge/wordpress-db-initialized
mkdir -p /var/lib/cartridge
printf "%s\n" "SERVICE_NAME=wordpress" "DB_PASSWORD=p'\''q\\\\r\"s\$(touch /tmp/pwned)" "DB_NAME=wp_blog" "DB_USER=bad-user;" >/var/lib/cartridge/launch-params
chmod 600 /var/lib/cartridge/launch-params
out=$($cmd 2>&1) && ok "payload: ${out//$'\''\n'\''/; }" || bad "wordpress-db-init with a payload: $out"
[ ! -e /tmp/pwned ] && ok "payload values are not evaluated" || bad "a payload value was executed"
pw=$(sed -n "s/^DB_PASSWORD=//p" /var/lib/cartridge/launch-params)
MYSQL_PWD=$pw mariadb --protocol=tcp -h 127.0.0.1 -u wordpress -e "SELECT 1" wp_blog >/dev/null 2>&1 &&
    ok "user wordpress logs in to wp_blog with the payload password" || bad "payload password does not work"
curl -sS http://127.0.0.1/wp-admin/install.php | grep "<title>WordPress &rsaquo; Installation" >/dev/null &&
    ok "PHP reads the quoted password and connects" || bad "WordPress cannot connect with the payload password"
'

smoke_ruby='
cmd=$(sed -n "s/^ExecStart=//p" /etc/systemd/system/rack-app.service)
# as rack-app.service (DynamicUser): an unprivileged user, in WorkingDirectory
(cd /srv/rack-app && RACK_ENV=production setpriv --reuid=nobody --regid=nogroup --clear-groups $cmd >/tmp/puma.out 2>&1) &
wait_port 3000 60 || { bad "puma does not listen on 3000"; cat /tmp/puma.out; }
expect_body http://127.0.0.1:3000/ "RUBYOK 3."
'

var=smoke_$type
if [ -z "${!var:-}" ]; then
    echo "$0: no smoke check for type $type" >&2
    exit 2
fi
printf '%s\n%s\nexit $failed\n' "$common" "${!var}" >"$work/smoke.sh"

timeout -k 10 600 unshare --mount --propagation private -- bash -s -- "$bi" "$layer" "$modules" "$work" <<'INNER'
set -eu -o pipefail
bi=$1 layer=$2 modules=$3 work=$4 root=$4/root
mount -t overlay overlay -o "lowerdir=$layer,upperdir=$work/upper,workdir=$work/ovl-work" "$root"
mkdir -p "$root/tmp/catalogue-check"
cp -a "$modules" "$root/tmp/catalogue-check/modules"
cp "$work/apply.pp" "$work/smoke.sh" "$root/tmp/catalogue-check/"
mount -t sysfs sysfs "$root/sys"
mount -t tmpfs tmpfs "$root/run"
chroot_env=(/usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LC_ALL=C.UTF-8)
set +e
unshare --pid --fork --kill-child --mount-proc="$root/proc" "$bi" __pid1 \
    chroot "$root" "${chroot_env[@]}" FACTER_cartridge_build=true \
    puppet apply --detailed-exitcodes --color=false \
    --modulepath=/tmp/catalogue-check/modules /tmp/catalogue-check/apply.pp >"$work/apply.out" 2>&1
echo $? >"$work/apply.rc"
# Fresh PID and network namespaces: every daemon started by the smoke check dies with
# the first, and the second has only a loopback interface.
unshare --net --pid --fork --kill-child --mount-proc="$root/proc" \
    chroot "$root" "${chroot_env[@]}" bash /tmp/catalogue-check/smoke.sh >"$work/smoke.out" 2>&1
echo $? >"$work/smoke.rc"
INNER

status=0
rc=$(cat "$work/apply.rc" 2>/dev/null || echo none)
changes=$(grep -E '^(Notice: /Stage|Warning:|Error:)' "$work/apply.out" 2>/dev/null | grep -v '^Error: Facter' || true)
if [ "$rc" = 0 ] && [ -z "$changes" ]; then
    echo "idempotency: ok: a second puppet apply of $* changed nothing (exit 0)"
else
    echo "idempotency: FAIL: a second puppet apply of $* exited $rc (expected 0, no changes):"
    sed 's/^/  | /' "$work/apply.out" 2>/dev/null
    status=1
fi
cat "$work/smoke.out" 2>/dev/null
rc=$(cat "$work/smoke.rc" 2>/dev/null || echo none)
if [ "$rc" = 0 ]; then
    echo "smoke: ok: $type answers"
else
    echo "smoke: FAIL ($type, exit $rc)"
    status=1
fi
exit $status
