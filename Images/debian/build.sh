#!/usr/bin/env bash
# Recipe for the `debian` image: Debian 12 with systemd on a qcow2 disk, booted
# by direct kernel boot (the kernel and initrd installed in the image).
#   build.sh inputs       print the identity of every input (for the cache digest)
#   build.sh build OUT    build into OUT: vmlinuz, initrd, cmdline, disk.qcow2, image.json
# The guest gives root shells with no password on ttyS0 (with the kernel log)
# and ttyS1 (the harness's channel). No network is configured.
set -euo pipefail
export LC_ALL=C
here=$(cd "$(dirname "$0")" && pwd)
cache=${REHEARSE_DOWNLOAD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rehearse/debs}
suite=bookworm
packages=(systemd systemd-sysv udev dbus linux-image-amd64 initramfs-tools procps iproute2 kmod)
size=2G

step() { echo "==> $*"; }

inputs() {
  # What mmdebstrap resolves changes only with the package lists: key on them.
  local key f
  key=$(ls -l --time-style=+%s /var/lib/apt/lists/ 2>/dev/null | sha256sum | cut -c1-16)
  f="$cache/debian-inputs-$key"
  if [ -s "$f" ]; then cat "$f"; return; fi
  mkdir -p "$cache"
  { echo "suite $suite size $size"; echo "mmdebstrap $(mmdebstrap --version 2>/dev/null)"
    apt-get download --print-uris "${packages[@]}" 2>/dev/null | awk '{print $2, $4}'; } > "$f.tmp.$$"
  mv "$f.tmp.$$" "$f"
  cat "$f"
}

build() {
  local out=$1
  mkdir -p "$out"; out=$(cd "$out" && pwd)
  work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
  step "mmdebstrap $suite with systemd and a kernel (about a minute)"
  mmdebstrap --quiet --variant=minbase --include="$(IFS=,; echo "${packages[*]}")" \
    --aptopt='Apt::Install-Recommends "false"' \
    --customize-hook="$here/customize.sh \"\$1\"" \
    "$suite" "$work/root"
  step "copy the kernel and initrd out of /boot"
  cp "$work"/root/boot/vmlinuz-* "$out/vmlinuz"
  cp "$work"/root/boot/initrd.img-* "$out/initrd"
  local rel; rel=$(ls "$work/root/lib/modules")
  step "make an ext4 filesystem from the tree ($size) and convert it to qcow2"
  mkfs.ext4 -q -L rehearse-root -d "$work/root" "$work/disk.raw" "$size"
  qemu-img convert -O qcow2 "$work/disk.raw" "$out/disk.qcow2"
  echo "root=LABEL=rehearse-root rw console=ttyS0,115200 panic=-1 quiet loglevel=4 tsc=reliable no_timer_check mitigations=off" > "$out/cmdline"
  cat > "$out/image.json" <<JSON
{"name": "debian", "kernelRelease": "$rel", "kernel": "vmlinuz", "initrd": "initrd", "cmdline": "cmdline", "disk": "disk.qcow2"}
JSON
  step "done: Debian $suite, kernel $rel"
}

case "${1:-}" in
  inputs) inputs ;;
  build) build "${2:?usage: build.sh build OUT}" ;;
  *) echo "usage: build.sh inputs | build OUT" >&2; exit 2 ;;
esac
