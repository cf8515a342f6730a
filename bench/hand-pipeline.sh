#!/bin/bash
# The baseline: the hand pipeline of image-pipeline.md, done with the stock tools, with the
# same mmdebstrap speed-ups and the same zstd qcow2 output as build-image.
#   hand-pipeline.sh cold OUT.qcow2 WORKDIR      rootfs + disk + customize + convert
#   hand-pipeline.sh warm OUT.qcow2 WORKDIR FILE re-customize the kept base: upload FILE
# Timing is done by the caller.
set -euo pipefail
mode=$1 out=$2 work=$3
export LIBGUESTFS_BACKEND_SETTINGS=force_tcg
sources=/etc/apt/sources.list.d/debian.sources
mkdir -p "$work"
if [ "$mode" = cold ]; then
  rm -f "$work/rootfs.tar" "$work/base.qcow2"
  # The speed-ups build-image's own mmdebstrap run has (builder/rootfs), so the comparison
  # is between the pipelines, not between mmdebstrap options.
  mmdebstrap --variant=minbase --quiet \
    --include=systemd-sysv,udev,linux-image-cloud-amd64,extlinux,syslinux-common,ifupdown,isc-dhcp-client,puppet-agent \
    --aptopt='APT::Install-Recommends "false"' --aptopt='Acquire::Languages "none"' \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-include=/usr/share/locale/locale.alias' --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' --dpkgopt='path-exclude=/usr/share/info/*' \
    --hook-dir=/usr/share/mmdebstrap/hooks/eatmydata \
    --customize-hook='printf "auto lo\niface lo inet loopback\nallow-hotplug eth0\niface eth0 inet dhcp\n" > "$1/etc/network/interfaces"' \
    --customize-hook='echo cartridge > "$1/etc/hostname"' \
    bookworm "$work/rootfs.tar" "$sources"
  guestfish -N "$work/disk.img=disk:4G" <<GF
part-init /dev/sda mbr
part-add /dev/sda p 2048 -1
part-set-bootable /dev/sda 1 true
mkfs ext4 /dev/sda1 label:rootfs
mount /dev/sda1 /
tar-in $work/rootfs.tar / xattrs:true acls:true
write /etc/fstab "LABEL=rootfs / ext4 errors=remount-ro 0 1\n"
mkdir-p /boot/extlinux
write /boot/extlinux/extlinux.conf "DEFAULT linux\nTIMEOUT 1\nPROMPT 0\nLABEL linux\n  LINUX /vmlinuz\n  INITRD /initrd.img\n  APPEND root=LABEL=rootfs ro console=ttyS0,115200 net.ifnames=0\n"
extlinux /boot/extlinux
copy-file-to-device /usr/lib/syslinux/mbr/mbr.bin /dev/sda size:440
umount-all
GF
  qemu-img convert -O qcow2 "$work/disk.img" "$work/base.qcow2"
  rm -f "$work/disk.img"
  file=$4
else
  file=$4
fi
# Customize an overlay of the kept base (what a re-build after an init-script change costs).
rm -f "$work/overlay.qcow2"
qemu-img create -q -f qcow2 -b "$work/base.qcow2" -F qcow2 "$work/overlay.qcow2"
virt-customize -q -a "$work/overlay.qcow2" --upload "$file:/usr/local/sbin/cartridge-init" \
  --run-command 'chmod 755 /usr/local/sbin/cartridge-init'
qemu-img convert -c -O qcow2 -o compression_type=zstd "$work/overlay.qcow2" "$out"
