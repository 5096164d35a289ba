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
# A persistent journal, so that the journal of every boot can be collected.
mkdir -p "$root/var/log/journal"
# Nothing here needs the network or a clock server.
for unit in systemd-timesyncd.service apt-daily.timer apt-daily-upgrade.timer; do
  ln -sf /dev/null "$root/etc/systemd/system/$unit"
done
# A minimal image has no bash completion or locale noise to wait for.
rm -f "$root"/etc/machine-id; : > "$root/etc/machine-id"
