# shellcheck shell=bash
# Functions for cartridge-init (sourced; installed as /usr/lib/cartridge/payload.sh).
#
# Rules kept by every function here:
#  - payload values are data: they are never evaluated, sourced or used unquoted;
#  - every file path is "$CI_ROOT/<path in the guest>" so tests can run against a sandbox;
#  - with CARTRIDGE_NO_SYSTEM=1 no system command runs (ci_run prints it instead).
#
# Globals set by ci_init_paths / ci_load_*:
#   CI_ROOT CI_CONF CI_PUPPET_CONF CI_STATE_DIR CI_PARAMS_FILE CI_TMP_PARAMS CI_MARKER
#   CI_PUPPET_DONE CI_INSTANCE_ID_FILE CI_LOG CI_HOSTNAME_FILE CI_HOSTS_FILE
#   CI_PARAMS (assoc. array: normalised payload)   CI_CONFV (assoc. array: cartridge.conf)

CI_KEY_RE='^[A-Za-z_][A-Za-z0-9_]*$'
CI_LABEL_RE='^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'
CI_MAX_PAYLOAD=262144   # bytes; EC2 allows 16 KiB of user data, OpenStack 64 KiB

declare -gA CI_PARAMS=()
declare -gA CI_CONFV=()

# shellcheck disable=SC2034  # used by cartridge-init
ci_init_paths() {
    CI_ROOT=${CARTRIDGE_ROOT:-}
    CI_ROOT=${CI_ROOT%/}
    CI_CONF=$CI_ROOT/etc/cartridge/cartridge.conf
    CI_PUPPET_CONF=$CI_ROOT/etc/puppet/puppet.conf
    CI_STATE_DIR=$CI_ROOT/var/lib/cartridge
    CI_PARAMS_FILE=$CI_STATE_DIR/launch-params
    CI_MARKER=$CI_STATE_DIR/initialized
    CI_PUPPET_DONE=$CI_STATE_DIR/puppet-done
    CI_INSTANCE_ID_FILE=$CI_STATE_DIR/instance-id
    CI_TMP_PARAMS=$CI_ROOT/tmp/payload/launch-params
    CI_LOG=$CI_ROOT/var/log/cartridge-init.log
    CI_HOSTNAME_FILE=$CI_ROOT/etc/hostname
    CI_HOSTS_FILE=$CI_ROOT/etc/hosts
}

# ---------------------------------------------------------------- logging

# ci_log MSG...: timestamped line in the log file only.
ci_log() {
    [ -n "${CI_LOG:-}" ] || return 0
    printf '%s %s\n' "$(date -u '+%Y-%m-%dT%H:%M:%SZ')" "$*" >>"$CI_LOG" 2>/dev/null || true
}

# ci_say MSG...: a key line: "cartridge-init: MSG" on stdout (the unit sends stdout to the
# journal and /dev/console, so a boot test reads it from the serial log) and in the log file.
ci_say() {
    printf 'cartridge-init: %s\n' "$*"
    ci_log "$*"
}

# ci_printable STRING [MAX]: STRING with control characters replaced and cut to MAX
# (default 80) characters, safe to put in a log line.
ci_printable() {
    local s=${1//[^[:print:]]/?} max=${2:-80}
    [ "${#s}" -gt "$max" ] && s="${s:0:max-3}..."
    printf '%s' "$s"
}

# ci_no_system: true when CARTRIDGE_NO_SYSTEM=1 (tests).
ci_no_system() { [ "${CARTRIDGE_NO_SYSTEM:-0}" = 1 ]; }

# ci_run CMD ARGS...: run a system command, or with CARTRIDGE_NO_SYSTEM=1 print
# "cartridge-init: would run: CMD ARGS" and succeed.
ci_run() {
    if ci_no_system; then
        ci_say "would run: $*"
        return 0
    fi
    ci_log "run: $*"
    "$@"
}

# ---------------------------------------------------------------- small helpers

ci_trim() {
    local s=$1
    s=${s#"${s%%[![:space:]]*}"}
    s=${s%"${s##*[![:space:]]}"}
    printf '%s' "$s"
}

ci_lower() { printf '%s' "${1,,}"; }

# ci_is_label S: a valid lower-case DNS label.
ci_is_label() { [[ $1 =~ $CI_LABEL_RE ]]; }

# ci_is_domain S: dot-separated valid labels, at most 253 characters.
ci_is_domain() {
    local d=$1 label
    [ -n "$d" ] && [ "${#d}" -le 253 ] || return 1
    [[ $d == .* || $d == *. || $d == *..* ]] && return 1
    local IFS=.
    for label in $d; do
        ci_is_label "$label" || return 1
    done
    return 0
}

ci_is_ipv4() {
    local ip=$1 o
    [[ $ip =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}$ ]] || return 1
    local IFS=.
    for o in $ip; do
        [ $((10#$o)) -le 255 ] || return 1
    done
}

ci_is_ip() {
    ci_is_ipv4 "$1" && return 0
    [[ $1 == *:* && $1 =~ ^[0-9A-Fa-f:.]{2,45}$ ]]
}

ci_is_port() { [[ $1 =~ ^[0-9]{1,5}$ ]] && [ $((10#$1)) -ge 1 ] && [ $((10#$1)) -le 65535 ]; }

# Puppet environment names: letters, digits and underscores.
ci_is_env_name() { [[ $1 =~ ^[a-z0-9_]+$ ]]; }

# ci_bool S: prints "true"/"false" for true/false in any case, nothing otherwise.
ci_bool() {
    case ${1,,} in
        true) printf true ;;
        false) printf false ;;
    esac
}

# ci_write_atomic DEST MODE: writes stdin to DEST through a temporary file in the same
# directory and a rename, so readers see the old or the new file, never half of one.
ci_write_atomic() {
    local dest=$1 mode=$2 dir tmp
    dir=$(dirname "$dest")
    mkdir -p "$dir" || return 1
    tmp=$(mktemp "$dir/.$(basename "$dest").XXXXXX") || return 1
    if ! cat >"$tmp"; then
        rm -f "$tmp"
        return 1
    fi
    chmod "$mode" "$tmp" || { rm -f "$tmp"; return 1; }
    if [ "$(id -u)" = 0 ]; then
        chown 0:0 "$tmp" || { rm -f "$tmp"; return 1; }
    fi
    mv -f "$tmp" "$dest" || { rm -f "$tmp"; return 1; }
}

# ---------------------------------------------------------------- payload

# ci_normalise_payload IN OUT: reads the raw payload IN, writes one KEY=VALUE per line to OUT.
# Accepted forms: the Stratos single line "K=V,K=V,...", or one pair per line (then
# values may contain commas). CR characters and NUL bytes are dropped, empty fields
# (",,") are skipped, keys and values are trimmed of surrounding blanks, a value is
# everything after the first "=" (it may contain "="),
# "null" is kept as is (consumers treat it as absent). A field without "=" or with a key
# not matching ^[A-Za-z_][A-Za-z0-9_]*$ is rejected with a log line. When a key appears
# twice the later value wins (the Cloud Controller appends overrides), at the position
# of the first. Values are never printed to the log.
ci_normalise_payload() {
    local in=$1 out=$2 data line field key value nlines=0 rejected=0 skipped=0
    local -a lines=() fields=() order=()
    local -A seen=()
    data=$(tr -d '\000\r' <"$in") || return 1
    data=${data#$'\xEF\xBB\xBF'}   # a byte order mark (an editor's) is not part of the first key
    while IFS= read -r line; do
        [ -n "$(ci_trim "$line")" ] || continue
        lines+=("$line")
        nlines=$((nlines + 1))
    done <<<"$data"

    if [ "$nlines" -eq 1 ]; then
        line=${lines[0]}
        while [[ $line == *,* ]]; do
            fields+=("${line%%,*}")
            line=${line#*,}
        done
        fields+=("$line")
    elif [ "$nlines" -gt 1 ]; then
        fields=("${lines[@]}")
    fi

    for field in "${fields[@]}"; do
        field=$(ci_trim "$field")
        if [ -z "$field" ]; then
            skipped=$((skipped + 1))
            continue
        fi
        if [[ $field != *=* ]]; then
            ci_say "payload: rejected a field without '=' (${#field} characters, not shown)"
            rejected=$((rejected + 1))
            continue
        fi
        key=$(ci_trim "${field%%=*}")
        value=$(ci_trim "${field#*=}")
        if ! [[ $key =~ $CI_KEY_RE ]]; then
            ci_say "payload: rejected invalid key '$(ci_printable "$key")'"
            rejected=$((rejected + 1))
            continue
        fi
        if [ -z "${seen[$key]+x}" ]; then
            order+=("$key")
        fi
        seen[$key]=$value
    done
    for key in "${order[@]}"; do
        printf '%s=%s\n' "$key" "${seen[$key]}"
    done >"$out" || return 1
    ci_log "payload: ${#order[@]} keys, $rejected rejected, $skipped empty fields"
}

# ci_load_params FILE: loads a normalised KEY=VALUE file into CI_PARAMS.
ci_load_params() {
    local line key
    CI_PARAMS=()
    [ -r "$1" ] || return 0
    while IFS= read -r line || [ -n "$line" ]; do
        [[ $line == *=* ]] || continue
        key=${line%%=*}
        [[ $key =~ $CI_KEY_RE ]] || continue
        CI_PARAMS[$key]=${line#*=}
    done <"$1"
}

# ci_param KEY: prints the payload value of KEY; fails when absent, empty or "null".
ci_param() {
    local v=${CI_PARAMS[$1]-}
    [ -n "$v" ] && [ "$v" != null ] || return 1
    printf '%s' "$v"
}

# ci_load_conf FILE: reads /etc/cartridge/cartridge.conf (shell-style KEY=value lines,
# optionally quoted) into CI_CONFV without sourcing it.
ci_load_conf() {
    local line key value
    CI_CONFV=()
    [ -r "$1" ] || return 0
    while IFS= read -r line || [ -n "$line" ]; do
        line=$(ci_trim "${line%$'\r'}")
        [[ -z $line || $line == \#* || $line != *=* ]] && continue
        line=${line#export }
        key=$(ci_trim "${line%%=*}")
        value=$(ci_trim "${line#*=}")
        [[ $key =~ $CI_KEY_RE ]] || continue
        if [[ ${#value} -ge 2 && ( ($value == \"*\" ) || ($value == \'*\') ) ]]; then
            value=${value:1:${#value}-2}
        fi
        CI_CONFV[$key]=$value
    done <"$1"
}

ci_conf() {
    local v=${CI_CONFV[$1]-}
    [ -n "$v" ] || return 1
    printf '%s' "$v"
}

# ---------------------------------------------------------------- payload sources

CI_HTTP_CODE=""

# ci_http OUT METHOD URL [HEADER]: one HTTP request. Returns 0 on HTTP 200 (body in OUT),
# 2 when the server answered 404 (definitive: no such data), 1 otherwise (transport error
# or other status: worth retrying). Never goes through a proxy.
ci_http() {
    local out=$1 method=$2 url=$3 header=${4:-} rc
    local -a args=(-sS --noproxy '*' -o "$out" -w '%{http_code}'
        --connect-timeout "${CARTRIDGE_HTTP_CONNECT_TIMEOUT:-2}"
        --max-time "${CARTRIDGE_HTTP_MAX_TIME:-5}"
        --max-filesize "$CI_MAX_PAYLOAD" -X "$method")
    [ -n "$header" ] && args+=(-H "$header")
    CI_HTTP_CODE=$(curl "${args[@]}" "$url" 2>/dev/null)
    rc=$?
    if [ "$rc" -ne 0 ]; then
        ci_log "http: $method $url: curl exit $rc"
        CI_HTTP_CODE=""
        return 1
    fi
    case $CI_HTTP_CODE in
        200) return 0 ;;
        404) return 2 ;;
    esac
    ci_log "http: $method $url: HTTP $CI_HTTP_CODE"
    return 1
}

# ci_http_status: "HTTP <code>" for the last request, or "no answer".
ci_http_status() {
    if [ -n "$CI_HTTP_CODE" ]; then printf 'HTTP %s' "$CI_HTTP_CODE"; else printf 'no answer'; fi
}

# ci_deadline_left: seconds left before CARTRIDGE_FETCH_DEADLINE (default 90 s) since
# the script started (bash's SECONDS); prints a number, fails when none is left.
ci_deadline_left() {
    local left=$(( ${CARTRIDGE_FETCH_DEADLINE:-90} - SECONDS ))
    [ "$left" -gt 0 ] || return 1
    printf '%s' "$left"
}

# ci_retry_sleep TRY: sleeps between tries (CARTRIDGE_HTTP_RETRY_SLEEP, default 1 s, doubled
# each try) unless the deadline would pass.
ci_retry_sleep() {
    local s=$(( ${CARTRIDGE_HTTP_RETRY_SLEEP:-1} * (1 << ($1 - 1)) )) left
    left=$(ci_deadline_left) || return 1
    [ "$s" -lt "$left" ] || return 1
    [ "$s" -gt 0 ] && sleep "$s"
    return 0
}

# ci_has_content FILE: true when FILE has a character other than whitespace and commas.
ci_has_content() { [ -s "$1" ] && grep -q '[^[:space:],]' "$1" 2>/dev/null; }

# ci_json_uuid FILE: prints the "uuid" string of an OpenStack meta_data.json.
ci_json_uuid() {
    local u
    u=$(grep -o '"uuid"[[:space:]]*:[[:space:]]*"[^"]*"' "$1" 2>/dev/null | head -n 1 |
        sed 's/.*"\([^"]*\)"$/\1/')
    [[ $u =~ ^[A-Za-z0-9._-]{1,128}$ ]] || return 1
    printf '%s' "$u"
}

ci_valid_instance_id() { [[ $1 =~ ^[A-Za-z0-9._-]{1,128}$ ]]; }

# The source functions below take OUT (raw payload) and IDOUT (instance id, written when
# found). They return 0 when OUT holds a payload and set CI_SOURCE to a description.
CI_SOURCE=""

ci_source_config_drive() {
    local out=$1 idout=$2 dev="" mnt f
    if [ -n "${CONFIG_DRIVE_DIR:-}" ]; then
        f=$CONFIG_DRIVE_DIR/openstack/latest/user_data
        if [ ! -f "$f" ]; then
            ci_say "config-drive: no $f"
            return 1
        fi
        head -c "$CI_MAX_PAYLOAD" "$f" >"$out" || return 1
        ci_json_uuid "$CONFIG_DRIVE_DIR/openstack/latest/meta_data.json" >"$idout" || : >"$idout"
        CI_SOURCE="config-drive ($CONFIG_DRIVE_DIR)"
        return 0
    fi
    if ci_no_system; then
        ci_run udevadm settle -t 5
        ci_run blkid -L config-2
        ci_say "config-drive: none (CARTRIDGE_NO_SYSTEM=1 and no CONFIG_DRIVE_DIR)"
        return 1
    fi
    command -v udevadm >/dev/null && udevadm settle -t 5 >/dev/null 2>&1
    dev=$(blkid -L config-2 2>/dev/null) || dev=$(blkid -L CONFIG-2 2>/dev/null) || dev=""
    if [ -z "$dev" ]; then
        ci_say "config-drive: none found (no filesystem labelled config-2/CONFIG-2)"
        return 1
    fi
    mnt=$(mktemp -d /run/cartridge-config-drive.XXXXXX) || return 1
    if ! mount -o ro "$dev" "$mnt" >/dev/null 2>&1; then
        ci_say "config-drive: cannot mount $dev read-only"
        rmdir "$mnt"
        return 1
    fi
    f=$mnt/openstack/latest/user_data
    local rc=1
    if [ -f "$f" ]; then
        head -c "$CI_MAX_PAYLOAD" "$f" >"$out" && rc=0
        ci_json_uuid "$mnt/openstack/latest/meta_data.json" >"$idout" || : >"$idout"
        CI_SOURCE="config-drive ($dev)"
    else
        ci_say "config-drive: $dev has no openstack/latest/user_data"
    fi
    umount "$mnt" >/dev/null 2>&1 || umount -l "$mnt" >/dev/null 2>&1
    rmdir "$mnt" 2>/dev/null
    return "$rc"
}

ci_source_openstack() {
    local out=$1 idout=$2 base=${METADATA_URL%/} try rc tries=${CARTRIDGE_HTTP_TRIES:-3}
    for ((try = 1; try <= tries; try++)); do
        ci_deadline_left >/dev/null || { ci_say "openstack-metadata: fetch deadline reached"; return 1; }
        ci_http "$out" GET "$base/openstack/latest/user_data"
        rc=$?
        if [ "$rc" -eq 0 ]; then
            local md
            md=$(mktemp) || return 1
            if ci_http "$md" GET "$base/openstack/latest/meta_data.json"; then
                ci_json_uuid "$md" >"$idout" || : >"$idout"
            fi
            rm -f "$md"
            CI_SOURCE="openstack-metadata ($base)"
            return 0
        fi
        if [ "$rc" -eq 2 ]; then
            ci_say "openstack-metadata: no user_data (HTTP 404)"
            return 1
        fi
        ci_say "openstack-metadata: try $try/$tries failed ($(ci_http_status))"
        [ "$try" -lt "$tries" ] && { ci_retry_sleep "$try" || break; }
    done
    return 1
}

ci_source_ec2() {
    local out=$1 idout=$2 base=${METADATA_URL%/} try rc tries=${CARTRIDGE_HTTP_TRIES:-3}
    local tokfile token hdr mode
    tokfile=$(mktemp) || return 1
    for ((try = 1; try <= tries; try++)); do
        ci_deadline_left >/dev/null || { ci_say "ec2-imds: fetch deadline reached"; break; }
        hdr="" mode=IMDSv1
        if ci_http "$tokfile" PUT "$base/latest/api/token" \
            "X-aws-ec2-metadata-token-ttl-seconds: 300"; then
            token=$(head -c 512 "$tokfile")
            if [[ $token =~ ^[A-Za-z0-9+/=_.-]+$ ]]; then
                hdr="X-aws-ec2-metadata-token: $token"
                mode=IMDSv2
            else
                ci_log "ec2-imds: token has unexpected characters, trying IMDSv1"
            fi
        else
            ci_log "ec2-imds: no token ($(ci_http_status)), trying IMDSv1"
        fi
        ci_http "$out" GET "$base/latest/user-data" "$hdr"
        rc=$?
        if [ "$rc" -eq 0 ]; then
            local id
            if ci_http "$tokfile" GET "$base/latest/meta-data/instance-id" "$hdr"; then
                id=$(head -c 200 "$tokfile")
                ci_valid_instance_id "$id" && printf '%s' "$id" >"$idout"
            fi
            rm -f "$tokfile"
            CI_SOURCE="ec2-imds ($mode, $base)"
            return 0
        fi
        if [ "$rc" -eq 2 ]; then
            ci_say "ec2-imds: no user-data (HTTP 404)"
            break
        fi
        ci_say "ec2-imds: try $try/$tries failed ($mode: $(ci_http_status))"
        [ "$try" -lt "$tries" ] && { ci_retry_sleep "$try" || break; }
    done
    rm -f "$tokfile"
    return 1
}

# ci_fetch_payload OUT IDOUT: tries the config drive, the OpenStack metadata service and
# the EC2 IMDS in that order. A source whose payload is empty (or only commas and
# whitespace) counts as having none. Returns 0 with CI_SOURCE set, 1 when none had one.
ci_fetch_payload() {
    local out=$1 idout=$2 src
    : >"$idout"
    for src in config_drive openstack ec2; do
        : >"$out"
        CI_SOURCE=""
        if "ci_source_$src" "$out" "$idout"; then
            if ci_has_content "$out"; then
                return 0
            fi
            ci_say "payload from $CI_SOURCE is empty; trying the next source"
            : >"$idout"
        fi
    done
    CI_SOURCE=""
    return 1
}

# ---------------------------------------------------------------- hostname and hosts

# ci_random_digits: 4 random digits + ddmmyySS, as the Stratos init script did.
# CARTRIDGE_HOST_DIGITS (tests) replaces the whole string.
ci_random_digits() {
    if [ -n "${CARTRIDGE_HOST_DIGITS:-}" ]; then
        printf '%s' "$CARTRIDGE_HOST_DIGITS"
        return
    fi
    local n
    n=$(od -An -N4 -tu4 /dev/urandom | tr -d ' \n')
    printf '%04d%s' $((n % 10000)) "$(date +%d%m%y%S)"
}

# ci_hosts_update FILE FQDN SHORT [IP NAME]: rewrites the hosts file: keeps every line
# except old 127.0.1.1 lines and the previous cartridge-init block, makes sure localhost
# is there, and appends
#   # BEGIN cartridge-init
#   127.0.1.1<TAB>FQDN SHORT
#   IP<TAB>NAME            (only when IP is given)
#   # END cartridge-init
ci_hosts_update() {
    local file=$1 fqdn=$2 short=$3 ip=${4:-} name=${5:-}
    {
        local have_localhost=0 inblock=0 line
        if [ -f "$file" ]; then
            while IFS= read -r line || [ -n "$line" ]; do
                if [ "$line" = "# BEGIN cartridge-init" ]; then inblock=1; continue; fi
                if [ "$line" = "# END cartridge-init" ]; then inblock=0; continue; fi
                [ "$inblock" = 1 ] && continue
                [[ $line =~ ^[[:space:]]*127\.0\.1\.1([[:space:]]|$) ]] && continue
                [[ $line =~ ^[[:space:]]*127\.0\.0\.1[[:space:]].*localhost ]] && have_localhost=1
                printf '%s\n' "$line"
            done <"$file"
        fi
        if [ "$have_localhost" = 0 ]; then
            printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n'
        fi
        printf '# BEGIN cartridge-init\n'
        if [ "$fqdn" = "$short" ]; then
            printf '127.0.1.1\t%s\n' "$fqdn"
        else
            printf '127.0.1.1\t%s %s\n' "$fqdn" "$short"
        fi
        [ -n "$ip" ] && printf '%s\t%s\n' "$ip" "$name"
        printf '# END cartridge-init\n'
    } | ci_write_atomic "$file" 0644
}

# ---------------------------------------------------------------- puppet.conf

# ci_ini_set FILE SECTION KEY VALUE: sets "KEY = VALUE" in [SECTION] (replacing the first
# KEY line there and dropping later duplicates, else adding it after the section's last
# setting), adding the section at the end if missing. Values go through the environment,
# so awk does not interpret them.
ci_ini_set() {
    local file=$1
    [ -f "$file" ] || : >>"$file" || return 1
    INI_SECTION=$2 INI_KEY=$3 INI_VALUE=$4 awk '
        function header(l,   s) { s = l; sub(/^[ \t]*\[[ \t]*/, "", s); sub(/[ \t]*\][ \t]*$/, "", s); return s }
        function flush() { printf "%s", blanks; blanks = "" }
        BEGIN { sec = ENVIRON["INI_SECTION"]; key = ENVIRON["INI_KEY"]; val = ENVIRON["INI_VALUE"]; cur = ""; done = 0; blanks = "" }
        /^[ \t]*$/ { blanks = blanks $0 "\n"; next }
        /^[ \t]*\[[^]]*\][ \t]*$/ {
            if (cur == sec && !done) { print key " = " val; done = 1 }
            flush(); cur = header($0); print; next
        }
        {
            flush()
            if (cur == sec) {
                l = $0; sub(/^[ \t]+/, "", l)
                if (index(l, key) == 1) {
                    rest = substr(l, length(key) + 1); sub(/^[ \t]+/, "", rest)
                    if (substr(rest, 1, 1) == "=") {
                        if (!done) { print key " = " val; done = 1 }
                        next
                    }
                }
            }
            print
        }
        END {
            if (!done) {
                if (cur != sec) { flush(); print "[" sec "]" }
                print key " = " val
            }
            flush()
        }
    ' "$file" | ci_write_atomic "$file" 0644
}

# ci_ini_del FILE SECTION KEY: removes KEY lines from [SECTION].
ci_ini_del() {
    local file=$1
    [ -f "$file" ] || return 0
    INI_SECTION=$2 INI_KEY=$3 awk '
        function header(l,   s) { s = l; sub(/^[ \t]*\[[ \t]*/, "", s); sub(/[ \t]*\][ \t]*$/, "", s); return s }
        BEGIN { sec = ENVIRON["INI_SECTION"]; key = ENVIRON["INI_KEY"]; cur = "" }
        /^[ \t]*\[[^]]*\][ \t]*$/ { cur = header($0); print; next }
        {
            if (cur == sec) {
                l = $0; sub(/^[ \t]+/, "", l)
                if (index(l, key) == 1) {
                    rest = substr(l, length(key) + 1); sub(/^[ \t]+/, "", rest)
                    if (substr(rest, 1, 1) == "=") next
                }
            }
            print
        }
    ' "$file" | ci_write_atomic "$file" 0644
}
