#!/bin/sh
# Real Keystone (under uwsgi) + Glance (glance-api) from Debian's packages, on loopback,
# with sqlite, in a private folder; for the "cloud" tests and bench/register-bench.sh.
#
#   tests/harness/cloud-services.sh start DIR   # prints nothing; writes DIR/env (OS_* for admin)
#   tests/harness/cloud-services.sh stop DIR    # stops both by the PIDs recorded in DIR
#
# Configuration facts (../shared/reference/services.md section 1): the keystone sqlite DB
# needs WAL mode, uwsgi must send "Connection: close", and Glance's keystonemiddleware needs
# an internal identity endpoint (we bootstrap one and also set interface = public).
# Nothing is written outside DIR; /etc/glance and /etc/keystone are left alone (only the
# packaged glance-api-paste.ini is read).
set -eu
action=${1:?usage: cloud-services.sh start|stop DIR}
dir=${2:?usage: cloud-services.sh start|stop DIR}

# shellcheck source=tests/harness/pidfile.sh
. "$(dirname "$0")/pidfile.sh"

free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

stop_pid() {
  f=$1
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  if [ -n "$pid" ] && pid_alive "$pid"; then
    kill -INT "$pid" 2>/dev/null || true
    i=0
    while pid_alive "$pid" && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

wait_http() {  # URL what log
  i=0
  until curl -s -o /dev/null --max-time 2 "$1"; do
    i=$((i + 1))
    if [ $i -gt 300 ]; then
      echo "cloud-services: $2 did not answer at $1 within 60 s; log:" >&2
      tail -30 "$3" >&2 || true
      exit 1
    fi
    sleep 0.2
  done
}

if [ "$action" = stop ]; then
  stop_pid "$dir/glance.pid"
  stop_pid "$dir/keystone.pid"
  exit 0
fi
[ "$action" = start ] || { echo "usage: cloud-services.sh start|stop DIR" >&2; exit 2; }

for p in uwsgi keystone-manage glance-api glance-manage sqlite3 curl; do
  command -v $p >/dev/null || { echo "cloud-services: $p is missing (scripts/install-deps test)" >&2; exit 3; }
done

mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
# A start that fails halfway stops what it started (the caller gets no DIR/env to stop).
stop_if_failed() {
  rc=$?
  if [ "$rc" -ne 0 ]; then stop_pid "$dir/glance.pid"; stop_pid "$dir/keystone.pid"; fi
}
trap stop_if_failed EXIT
mkdir -p "$dir/fernet" "$dir/credential" "$dir/images" "$dir/staging" "$dir/tasks" "$dir/lock"
kport=${KEYSTONE_PORT:-$(free_port)}
gport=${GLANCE_PORT:-$(free_port)}
kurl="http://127.0.0.1:$kport/v3"
gurl="http://127.0.0.1:$gport"
admin_pw=adminpw-$$
glance_pw=glancepw-$$

# ---------------- Keystone ----------------
cat > "$dir/keystone.conf" <<EOF
[DEFAULT]
log_file = $dir/keystone-app.log
[database]
connection = sqlite:///$dir/keystone.sqlite
[fernet_tokens]
key_repository = $dir/fernet
[credential]
key_repository = $dir/credential
[token]
provider = fernet
EOF
K="keystone-manage --config-file $dir/keystone.conf"
{
  $K db_sync
  sqlite3 "$dir/keystone.sqlite" 'PRAGMA journal_mode=WAL;'
  $K fernet_setup --keystone-user root --keystone-group root
  $K credential_setup --keystone-user root --keystone-group root
  $K bootstrap --bootstrap-username admin --bootstrap-password "$admin_pw" \
    --bootstrap-project-name admin --bootstrap-role-name admin --bootstrap-service-name keystone \
    --bootstrap-region-id RegionOne --bootstrap-public-url "$kurl" --bootstrap-internal-url "$kurl" \
    --bootstrap-admin-url "$kurl"
} >"$dir/keystone-setup.log" 2>&1 || { echo "cloud-services: keystone setup failed:" >&2; tail -20 "$dir/keystone-setup.log" >&2; exit 1; }

cat > "$dir/keystone-uwsgi.ini" <<EOF
[uwsgi]
http-socket = 127.0.0.1:$kport
wsgi-file = /usr/bin/keystone-wsgi-public
plugins = python3
master = true
processes = 1
threads = 1
die-on-term = true
add-header = Connection: close
env = OS_KEYSTONE_CONFIG_FILES=$dir/keystone.conf
logto = $dir/keystone.log
pidfile = $dir/keystone.pid
EOF
uwsgi --ini "$dir/keystone-uwsgi.ini" --daemonize2 "$dir/keystone.log" >"$dir/keystone-start.log" 2>&1
wait_http "$kurl" keystone "$dir/keystone.log"
# Both services stop when the test that started them dies without stopping them.
stop_with_owner "$dir/keystone.pid" sh "$0" stop "$dir"

# Admin token (project-scoped), then the glance service user and the image endpoints.
auth_body() {
  printf '{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"%s","domain":{"id":"default"},"password":"%s"}}},"scope":{"project":{"name":"%s","domain":{"id":"default"}}}}}' "$1" "$2" "$3"
}
token=$(auth_body admin "$admin_pw" admin | curl -s -D - -o /dev/null -H 'Content-Type: application/json' \
  --data-binary @- "$kurl/auth/tokens" | awk 'tolower($1)=="x-subject-token:" {print $2}' | tr -d '\r')
[ -n "$token" ] || { echo "cloud-services: no admin token from keystone" >&2; tail -20 "$dir/keystone.log" >&2; exit 1; }
kpost() {  # path json -> response body
  curl -s -f -H "X-Auth-Token: $token" -H 'Content-Type: application/json' --data-binary "$2" "$kurl$1"
}
json_id() { /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); print(d[sys.argv[1]]["id"])' "$1"; }
service_project=$(kpost /projects '{"project":{"name":"service","domain_id":"default"}}' | json_id project)
glance_user=$(kpost /users "{\"user\":{\"name\":\"glance\",\"domain_id\":\"default\",\"password\":\"$glance_pw\"}}" | json_id user)
admin_role=$(curl -s -f -H "X-Auth-Token: $token" "$kurl/roles?name=admin" |
  /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["roles"][0]["id"])')
curl -s -f -X PUT -H "X-Auth-Token: $token" "$kurl/projects/$service_project/users/$glance_user/roles/$admin_role"
image_service=$(kpost /services '{"service":{"name":"glance","type":"image"}}' | json_id service)
for iface in public internal; do
  kpost /endpoints "{\"endpoint\":{\"service_id\":\"$image_service\",\"interface\":\"$iface\",\"region_id\":\"RegionOne\",\"url\":\"$gurl\"}}" >/dev/null
done

# ---------------- Glance ----------------
cat > "$dir/glance-api.conf" <<EOF
[DEFAULT]
bind_host = 127.0.0.1
bind_port = $gport
workers = 0
log_file = $dir/glance-api.log
enabled_backends = fs:file
[database]
connection = sqlite:///$dir/glance.sqlite
[glance_store]
default_backend = fs
[fs]
filesystem_store_datadir = $dir/images/
[os_glance_staging_store]
filesystem_store_datadir = $dir/staging/
[os_glance_tasks_store]
filesystem_store_datadir = $dir/tasks/
[oslo_concurrency]
lock_path = $dir/lock
[paste_deploy]
flavor = keystone
config_file = /etc/glance/glance-api-paste.ini
[keystone_authtoken]
www_authenticate_uri = $kurl
auth_url = $kurl
auth_type = password
project_domain_id = default
user_domain_id = default
project_name = service
username = glance
password = $glance_pw
interface = public
EOF
glance-manage --config-file "$dir/glance-api.conf" db_sync >"$dir/glance-setup.log" 2>&1
sqlite3 "$dir/glance.sqlite" 'PRAGMA journal_mode=WAL;' >/dev/null
# setsid: its own session, so the caller's Ctrl-C or process group kill does not race the stop.
setsid glance-api --config-file "$dir/glance-api.conf" >>"$dir/glance-api.log" 2>&1 &
echo $! > "$dir/glance.pid"
wait_http "$gurl/healthcheck" glance-api "$dir/glance-api.log"

cat > "$dir/env" <<EOF
export OS_AUTH_URL=$kurl
export OS_USERNAME=admin
export OS_PASSWORD=$admin_pw
export OS_PROJECT_NAME=admin
export OS_USER_DOMAIN_ID=default
export OS_PROJECT_DOMAIN_ID=default
export OS_REGION_NAME=RegionOne
export OS_INTERFACE=public
export GLANCE_URL=$gurl
EOF
chmod 600 "$dir/env"
