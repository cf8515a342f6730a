# shellcheck shell=bash
# Per-boot instance setup for cartridge-init (sourced after payload.sh; installed as
# /usr/lib/cartridge/instance.sh): the cloud key pair into the login user's
# authorized_keys, sshd off when cartridge.conf says SSH=off, the root partition and
# filesystem grown to the disk at first boot, NTP servers from cartridge.conf.
# Same rules as payload.sh: paths under $CI_ROOT, metadata values are data, and with
# CARTRIDGE_NO_SYSTEM=1 no system command runs.

# Key types sshd accepts. A line must start with one: authorized_keys options such as
# command="..." from the metadata are never written.
CI_SSH_KEY_RE='^(ssh-(rsa|dss|ed25519)|ecdsa-sha2-nistp(256|384|521)|sk-(ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com) [A-Za-z0-9+/]+={0,3}( [[:print:]]*)?$'
CI_KEYS_BEGIN='# BEGIN cartridge-init: the cloud key pair (rewritten at every boot)'
CI_KEYS_END='# END cartridge-init'
CI_KEY_SOURCE=""

# ci_ssh_enabled: false when cartridge.conf has SSH=off (also no/false/0).
ci_ssh_enabled() {
    local v
    v=$(ci_conf SSH) || return 0
    case ${v,,} in
        off | no | false | 0) return 1 ;;
    esac
    return 0
}

# ci_valid_keys: filters stdin to well-formed public key lines, trimmed, each once.
ci_valid_keys() {
    local line
    local -A seen=()
    while IFS= read -r line || [ -n "$line" ]; do
        line=$(ci_trim "${line%$'\r'}")
        [ -n "$line" ] || continue
        if ! [[ $line =~ $CI_SSH_KEY_RE ]]; then
            ci_say "ssh: ignoring a public key that is not one (${#line} characters, not shown)" >&2
            continue
        fi
        local id=${line%% *} rest=${line#* }
        id="$id ${rest%% *}"
        [ -n "${seen[$id]+x}" ] && continue
        seen[$id]=1
        printf '%s\n' "$line"
    done
}

# ci_json_public_keys FILE: the values of the "public_keys" object of an OpenStack
# meta_data.json ({"name": "ssh-ed25519 AAAA... comment\n", ...}), one key a line.
ci_json_public_keys() {
    local flat obj
    flat=$(tr -d '\r\n' <"$1" 2>/dev/null) || return 1
    [[ $flat =~ \"public_keys\"[[:space:]]*:[[:space:]]*\{([^}]*)\} ]] || return 0
    obj=${BASH_REMATCH[1]}
    grep -oE '"([^"\\]|\\.)*"[[:space:]]*:[[:space:]]*"([^"\\]|\\.)*"' <<<"$obj" |
        sed -E 's/^"([^"\\]|\\.)*"[[:space:]]*:[[:space:]]*"//; s/"$//' |
        sed -E 's/\\n/\n/g; s/\\r//g; s#\\/#/#g; s/\\"/"/g; s/\\\\/\\/g'
}

# ci_config_drive_copy RELPATH DEST: copies a file of the config drive (CONFIG_DRIVE_DIR,
# else the filesystem labelled config-2, mounted read-only for the copy).
ci_config_drive_copy() {
    local rel=$1 dest=$2 dev mnt rc=1
    if [ -n "${CONFIG_DRIVE_DIR:-}" ]; then
        [ -f "$CONFIG_DRIVE_DIR/$rel" ] && head -c "$CI_MAX_PAYLOAD" "$CONFIG_DRIVE_DIR/$rel" >"$dest"
        return
    fi
    ci_no_system && return 1
    # Early in the first boot the drive may not be probed yet: without this the keys would
    # come from nowhere (or a metadata service the cloud does not have) on that boot.
    command -v udevadm >/dev/null && udevadm settle -t 5 >/dev/null 2>&1
    dev=$(blkid -L config-2 2>/dev/null) || dev=$(blkid -L CONFIG-2 2>/dev/null) || return 1
    mnt=$(mktemp -d /run/cartridge-config-drive.XXXXXX) || return 1
    if mount -o ro "$dev" "$mnt" >/dev/null 2>&1; then
        [ -f "$mnt/$rel" ] && head -c "$CI_MAX_PAYLOAD" "$mnt/$rel" >"$dest" && rc=0
        umount "$mnt" >/dev/null 2>&1 || umount -l "$mnt" >/dev/null 2>&1
    fi
    rmdir "$mnt" 2>/dev/null
    return "$rc"
}

# ci_fetch_keys OUT HTTP: the cloud key pair's public keys, one a line, from the first
# source that answers: config drive meta_data.json, OpenStack metadata meta_data.json,
# EC2 IMDS meta-data/public-keys/0/openssh-key (v2 token first). One try each: the keys
# are read at every boot and a missing source must not delay it. HTTP=0 skips the
# metadata services. Sets CI_KEY_SOURCE; fails when no source answered (OUT is then
# not to be used: the keys in place are kept).
ci_fetch_keys() {
    local out=$1 http=$2 base=${METADATA_URL%/} tmp hdr="" mode=IMDSv1 token rc
    : >"$out"
    CI_KEY_SOURCE=""
    tmp=$(mktemp) || return 1
    if ci_config_drive_copy openstack/latest/meta_data.json "$tmp"; then
        ci_json_public_keys "$tmp" | ci_valid_keys >"$out"
        CI_KEY_SOURCE=config-drive
    elif [ "$http" = 1 ]; then
        if ci_http "$tmp" GET "$base/openstack/latest/meta_data.json"; then
            ci_json_public_keys "$tmp" | ci_valid_keys >"$out"
            CI_KEY_SOURCE=openstack-metadata
        else
            if ci_http "$tmp" PUT "$base/latest/api/token" "X-aws-ec2-metadata-token-ttl-seconds: 300"; then
                token=$(head -c 512 "$tmp")
                if [[ $token =~ ^[A-Za-z0-9+/=_.-]+$ ]]; then
                    hdr="X-aws-ec2-metadata-token: $token"
                    mode=IMDSv2
                fi
            fi
            ci_http "$tmp" GET "$base/latest/meta-data/public-keys/0/openssh-key" "$hdr"
            rc=$?
            if [ "$rc" -eq 0 ]; then
                ci_valid_keys <"$tmp" >"$out"
                CI_KEY_SOURCE="ec2-imds ($mode)"
            elif [ "$rc" -eq 2 ]; then
                CI_KEY_SOURCE="ec2-imds ($mode)" # answered: the instance has no key pair
            fi
        fi
    fi
    rm -f "$tmp"
    [ -n "$CI_KEY_SOURCE" ]
}

# ci_authorized_keys_update FILE KEYS: replaces the cartridge-init block of FILE with the
# keys in KEYS. Lines outside the block (keys someone added on the instance) are kept, and
# a cloud key already among them is not written again.
ci_authorized_keys_update() {
    local file=$1 keys=$2 line inblock=0 id rest
    local -A outside=()
    {
        if [ -f "$file" ]; then
            while IFS= read -r line || [ -n "$line" ]; do
                if [ "$line" = "$CI_KEYS_BEGIN" ]; then inblock=1; continue; fi
                if [ "$inblock" = 1 ]; then
                    [ "$line" = "$CI_KEYS_END" ] && inblock=0
                    continue
                fi
                printf '%s\n' "$line"
                if [[ $line =~ $CI_SSH_KEY_RE ]]; then
                    rest=${line#* }
                    outside["${line%% *} ${rest%% *}"]=1
                fi
            done <"$file"
        fi
        local -a new=()
        while IFS= read -r line; do
            rest=${line#* }
            id="${line%% *} ${rest%% *}"
            [ -n "${outside[$id]+x}" ] || new+=("$line")
        done <"$keys"
        if [ "${#new[@]}" -gt 0 ]; then
            printf '%s\n' "$CI_KEYS_BEGIN" "${new[@]}" "$CI_KEYS_END"
        fi
    } | ci_write_atomic "$file" 0600
}

# ci_ssh_setup HTTP: every boot. SSH=off: sshd masked and stopped. Otherwise the cloud
# key pair goes to LOGIN_USER's (cartridge.conf, default root) ~/.ssh/authorized_keys.
ci_ssh_setup() {
    local http=$1 user entry uid gid home keys n
    if ! ci_ssh_enabled; then
        ci_say "ssh: off (SSH=off in ${CI_CONF#"$CI_ROOT"}): masking sshd"
        if ci_no_system || [ -d /run/systemd/system ]; then
            ci_run systemctl mask --now ssh.service ssh.socket ||
                ci_say "ssh: cannot mask ssh.service"
        fi
        return 0
    fi
    user=$(ci_conf LOGIN_USER) || user=root
    if ! [[ $user =~ ^[a-z_][a-z0-9_-]{0,31}$ ]]; then
        ci_say "ssh: invalid LOGIN_USER '$(ci_printable "$user")' in ${CI_CONF#"$CI_ROOT"}: no keys installed"
        return 0
    fi
    entry=$(awk -F: -v u="$user" '$1 == u { print $3 ":" $4 ":" $6; exit }' "$CI_ROOT/etc/passwd" 2>/dev/null)
    if [ -z "$entry" ]; then
        ci_say "ssh: login user $user does not exist: no keys installed"
        return 0
    fi
    IFS=: read -r uid gid home <<<"$entry"
    keys=$(mktemp) || return 0
    if ! ci_fetch_keys "$keys" "$http"; then
        ci_say "ssh: no metadata source answered: keeping the authorized keys of $user as they are"
        rm -f "$keys"
        return 0
    fi
    n=$(grep -c . "$keys")
    local dir=$CI_ROOT${home%/}/.ssh
    if [ -L "$dir" ] || { [ -e "$dir" ] && [ ! -d "$dir" ]; }; then
        ci_say "ssh: ${dir#"$CI_ROOT"} is not a plain directory: no keys installed"
        rm -f "$keys"
        return 0
    fi
    if [ "$n" -eq 0 ] && [ ! -e "$dir/authorized_keys" ]; then
        ci_say "ssh: no key pair from $CI_KEY_SOURCE"
        rm -f "$keys"
        return 0
    fi
    if ! { mkdir -p "$dir" && chmod 0700 "$dir" && ci_authorized_keys_update "$dir/authorized_keys" "$keys"; }; then
        ci_say "ssh: cannot write ${dir#"$CI_ROOT"}/authorized_keys"
        rm -f "$keys"
        return 0
    fi
    if [ "$(id -u)" = 0 ]; then
        chown "$uid:$gid" "$dir" "$dir/authorized_keys"
    fi
    rm -f "$keys"
    ci_say "ssh: $n key(s) of the cloud key pair from $CI_KEY_SOURCE for $user (${dir#"$CI_ROOT"}/authorized_keys)"
}

# ci_time_setup: NTP_SERVERS (cartridge.conf; names or addresses, blank or comma
# separated) become a timesyncd drop-in that replaces every other server list (DHCP's and
# Debian's pool). Without it the drop-in is removed. timesyncd restarts when it changed.
ci_time_setup() {
    local dropin=$CI_ROOT/etc/systemd/timesyncd.conf.d/90-cartridge.conf v s content=""
    local -a given=() servers=()
    if v=$(ci_conf NTP_SERVERS); then
        IFS=$', \t' read -r -a given <<<"$v"
        for s in "${given[@]}"; do
            s=$(ci_lower "$s")
            if ci_is_domain "$s" || ci_is_ip "$s"; then
                servers+=("$s")
            else
                ci_say "time: ignoring NTP server '$(ci_printable "$s")': not a host name or address"
            fi
        done
    fi
    if [ "${#servers[@]}" -gt 0 ]; then
        # The empty NTP= first: timesyncd appends lists, this resets them.
        content=$(printf '%s\n' '# Written by cartridge-init from NTP_SERVERS in /etc/cartridge/cartridge.conf' \
            '[Time]' 'NTP=' "NTP=${servers[*]}")
        if [ "$(cat "$dropin" 2>/dev/null)" = "$content" ]; then
            return 0
        fi
        printf '%s\n' "$content" | ci_write_atomic "$dropin" 0644 || { ci_say "time: cannot write $dropin"; return 0; }
        ci_say "time: NTP servers ${servers[*]} (NTP_SERVERS)"
    elif [ -e "$dropin" ]; then
        rm -f "$dropin"
        ci_say "time: NTP_SERVERS gone: back to DHCP's or Debian's servers"
    else
        return 0
    fi
    if ci_no_system || [ -d /run/systemd/system ]; then
        ci_run systemctl try-restart systemd-timesyncd.service
    fi
}

# ci_grow_root: once per instance, the partition holding / grows to the end of its disk
# (growpart) and its ext filesystem with it (resize2fs, online). Root is found from
# mountinfo's device number through sysfs, so any disk name works (vda, sda, nvme0n1).
# A disk with less than 1 MiB after the partition is left alone. A failure is logged and
# tried again at the next boot; it never stops the rest of cartridge-init.
ci_grow_root() {
    local marker=$CI_STATE_DIR/root-grown mi=$CI_ROOT/proc/self/mountinfo
    [ -e "$marker" ] && return 0
    local line majmin fstype part_sys disk_sys partnum part disk start size disk_size free out rc
    line=$(awk '$5 == "/" { for (i = 7; i <= NF; i++) if ($i == "-") { print $3, $(i + 1); break } }' "$mi" 2>/dev/null | tail -n 1)
    if [ -z "$line" ]; then
        ci_say "growroot: / not found in ${mi#"$CI_ROOT"}: not growing"
        return 0
    fi
    read -r majmin fstype <<<"$line"
    part_sys=$(readlink -f "$CI_ROOT/sys/dev/block/$majmin" 2>/dev/null)
    if [ -z "$part_sys" ] || [ ! -r "$part_sys/partition" ]; then
        ci_say "growroot: / ($majmin) is not on a disk partition: not growing"
        printf 'not a partition\n' | ci_write_atomic "$marker" 0644
        return 0
    fi
    disk_sys=$(dirname "$part_sys")
    partnum=$(cat "$part_sys/partition")
    part=/dev/$(basename "$part_sys")
    disk=/dev/$(basename "$disk_sys")
    start=$(cat "$part_sys/start") size=$(cat "$part_sys/size") disk_size=$(cat "$disk_sys/size")
    free=$((disk_size - start - size))
    if [ "$free" -lt 2048 ]; then
        ci_say "growroot: / ($part) already fills $disk ($((size / 2048)) MiB)"
        printf 'fills the disk\n' | ci_write_atomic "$marker" 0644
        return 0
    fi
    local growpart=${CARTRIDGE_GROWPART:-growpart} resize2fs=${CARTRIDGE_RESIZE2FS:-resize2fs}
    if ci_no_system && [ -z "${CARTRIDGE_GROWPART:-}" ]; then
        ci_say "would run: growpart $disk $partnum"
        return 0
    fi
    out=$("$growpart" "$disk" "$partnum" 2>&1)
    rc=$?
    ci_log "growroot: growpart $disk $partnum: exit $rc: $out"
    if [ "$rc" -eq 1 ] && [[ $out == *NOCHANGE* ]]; then
        ci_say "growroot: growpart found nothing to grow on $disk"
        printf 'nothing to grow\n' | ci_write_atomic "$marker" 0644
        return 0
    fi
    if [ "$rc" -ne 0 ]; then
        ci_say "growroot: growpart $disk $partnum failed (exit $rc): $(ci_printable "$(tail -n 1 <<<"$out")" 160)"
        return 0
    fi
    case $fstype in
        ext2 | ext3 | ext4)
            out=$("$resize2fs" "$part" 2>&1)
            rc=$?
            ci_log "growroot: resize2fs $part: exit $rc: $out"
            if [ "$rc" -ne 0 ]; then
                ci_say "growroot: resize2fs $part failed (exit $rc): $(ci_printable "$(tail -n 1 <<<"$out")" 160)"
                return 0
            fi
            ;;
        *) ci_say "growroot: / is $(ci_printable "$fstype"), not ext2/3/4: only the partition grew" ;;
    esac
    ci_say "grew / from $((size / 2048)) MiB to $(($(cat "$part_sys/size") / 2048)) MiB ($part on $disk)"
    date -u '+%Y-%m-%dT%H:%M:%SZ' | ci_write_atomic "$marker" 0644
}
