#!/usr/bin/env bash
# Runs on the unpacked tree ($1) before it becomes a disk.
set -euo pipefail
root=$1
echo rehearse-debian > "$root/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 rehearse-debian\n' > "$root/etc/hosts"
echo 'LABEL=rehearse-root / ext4 defaults 0 1' > "$root/etc/fstab"
# Root logs in without a password on both serial ports.
chroot "$root" passwd -d root >/dev/null
for tty in ttyS0 ttyS1; do
  d="$root/etc/systemd/system/serial-getty@$tty.service.d"
  mkdir -p "$d"
  cat > "$d/autologin.conf" <<'UNIT'
[Service]
ExecStart=
ExecStart=-/sbin/agetty --autologin root --noclear --keep-baud 115200,38400,9600 %I $TERM
UNIT
  ln -sf /lib/systemd/system/serial-getty@.service "$root/etc/systemd/system/getty.target.wants/serial-getty@$tty.service"
done
# The serial gettys wait for their device units, which appear only once udev
# has got to the ports; on a host short of CPU that can pass systemd's 90 s
# device timeout, and a getty that gave up leaves the harness no channel.
for tty in ttyS0 ttyS1; do
  mkdir -p "$root/etc/systemd/system/dev-$tty.device.d"
  printf '[Unit]\nJobTimeoutSec=infinity\nJobRunningTimeoutSec=infinity\n' > "$root/etc/systemd/system/dev-$tty.device.d/rehearse-wait.conf"
done
# A persistent journal, so that the journal of every boot can be collected.
mkdir -p "$root/var/log/journal"
# Nothing here needs the network or a clock server.
for unit in systemd-timesyncd.service apt-daily.timer apt-daily-upgrade.timer; do
  ln -sf /dev/null "$root/etc/systemd/system/$unit"
done
# Each boot makes its own machine id.
rm -f "$root"/etc/machine-id; : > "$root/etc/machine-id"
# No network: APT only ever sees the repositories a scenario adds (the payload).
rm -f "$root/etc/apt/sources.list" "$root"/etc/apt/sources.list.d/*
# A small initrd with just what a virtio disk needs: faster to load through
# the BIOS, and faster for the guest to rebuild when it installs a kernel.
mkdir -p "$root/etc/initramfs-tools/conf.d"
echo MODULES=list > "$root/etc/initramfs-tools/conf.d/rehearse.conf"
printf '%s\n' virtio_pci virtio_blk virtio_console ext4 >> "$root/etc/initramfs-tools/modules"
chroot "$root" update-initramfs -u -k all >/dev/null
# GRUB's settings, for when the guest runs update-grub (as a kernel install does).
cat > "$root/etc/default/grub" <<GRUB
GRUB_DEFAULT=0
GRUB_TIMEOUT=0
GRUB_DISTRIBUTOR=Debian
GRUB_CMDLINE_LINUX_DEFAULT=""
GRUB_CMDLINE_LINUX="$CMDLINE"
GRUB_TERMINAL=serial
GRUB_SERIAL_COMMAND="serial --unit=0 --speed=115200"
GRUB_DISABLE_OS_PROBER=true
GRUB_DISABLE_RECOVERY=true
GRUB
# cloud-init is installed but off (debian-cloud turns it on): when on, it
# reads NoCloud seeds only (no network to ask a metadata service), leaves the
# network alone (there is none), keeps the C.UTF-8 locale (no other is
# generated) and makes no SSH host keys (no sshd).
touch "$root/etc/cloud/cloud-init.disabled"
cat > "$root/etc/cloud/cloud.cfg.d/90-rehearse.cfg" <<'CFG'
datasource_list: [ NoCloud, None ]
network: {config: disabled}
locale: C.UTF-8
ssh_genkeytypes: []
CFG
# The demo service, version 1.0, installed and enabled as a package.
cp "$DEMO_DEB" "$root/tmp/rehearse-demo.deb"
chroot "$root" dpkg -i /tmp/rehearse-demo.deb >/dev/null
rm -f "$root/tmp/rehearse-demo.deb"
