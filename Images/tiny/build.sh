#!/usr/bin/env bash
# Recipe for the `tiny` image: Debian's kernel and a busybox initramfs.
#   build.sh inputs       print the identity of every input (for the cache digest)
#   build.sh build OUT    build into OUT: vmlinux, initrd, cmdline, image.json
#   build.sh debs         fetch (or find) the kernel and busybox-static packages it
#                         uses and print their paths (the NixOS test fixture uses them)
# Everything comes from Debian packages; nothing is taken from the host's /boot.
set -euo pipefail
export LC_ALL=C
here=$(cd "$(dirname "$0")" && pwd)
kernel_meta=linux-image-amd64
cache=${REHEARSE_DOWNLOAD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rehearse/debs}

step() { echo "==> $*"; }

ensure_lists() {
  if ! apt-cache show "$kernel_meta" >/dev/null 2>&1; then
    step "apt-get update (package lists are missing)"
    apt-get update -qq >&2
  fi
}

kernel_pkg() { apt-cache depends "$kernel_meta" | awk '/Depends: linux-image-[0-9]/ {print $2; exit}'; }

uri_line() { apt-get download --print-uris "$1" 2>/dev/null | head -n1; }

inputs() {
  # Resolving packages costs apt seconds; the answer only changes with the
  # package lists, so it is kept keyed by their names, sizes and times.
  local key f
  key=$(ls -l --time-style=+%s /var/lib/apt/lists/ 2>/dev/null | sha256sum | cut -c1-16)
  f="$cache/inputs-$key"
  if [ -s "$f" ]; then cat "$f"; return; fi
  ensure_lists >&2
  local k; k=$(kernel_pkg)
  [ -n "$k" ] || { echo "tiny: cannot resolve $kernel_meta" >&2; exit 1; }
  mkdir -p "$cache"
  apt-get download --print-uris "$k" busybox-static 2>/dev/null | awk '
    { name = $2; sub(/_.*/, "", name); print name, $2, $4 }' > "$f.tmp.$$"
  [ "$(wc -l < "$f.tmp.$$")" -eq 2 ] || { rm -f "$f.tmp.$$"; echo "tiny: cannot find $k and busybox-static" >&2; exit 1; }
  mv "$f.tmp.$$" "$f"
  cat "$f"
}

fetch() { # fetch PKG -> prints path of the .deb
  local line file sha
  line=$(uri_line "$1"); file=$(echo "$line" | awk '{print $2}'); sha=$(echo "$line" | awk '{print $4}' | sed 's/^SHA256://')
  mkdir -p "$cache"
  if [ ! -f "$cache/$file" ] || ! echo "$sha  $cache/$file" | sha256sum -c --status; then
    (cd "$cache" && apt-get download -q "$1" >/dev/null 2>&1)
    echo "$sha  $cache/$file" | sha256sum -c --status || { echo "tiny: checksum mismatch for $file" >&2; exit 1; }
  fi
  echo "$cache/$file"
}

build() {
  local out=$1
  mkdir -p "$out"; out=$(cd "$out" && pwd)
  work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
  ensure_lists
  local k; k=$(kernel_pkg)
  step "download $k and busybox-static"
  local kdeb bdeb; kdeb=$(fetch "$k"); bdeb=$(fetch busybox-static)
  step "unpack the kernel package"
  dpkg-deb -x "$kdeb" "$work/k"
  dpkg-deb -x "$bdeb" "$work/b"
  local rel; rel=$(ls "$work/k/lib/modules")
  step "extract an uncompressed vmlinux (boots through PVH, about 3x faster under TCG)"
  local z="$work/k/boot/vmlinuz-$rel" off
  off=$(grep -obUaP '\xFD7zXZ\x00' "$z" | head -n1 | cut -d: -f1)
  [ -n "$off" ] || { echo "tiny: no xz payload in $z" >&2; exit 1; }
  tail -c +$((off + 1)) "$z" | xz -dc --single-stream > "$out/vmlinux" 2>/dev/null || true
  [ "$(head -c 4 "$out/vmlinux" | tail -c 3)" = ELF ] || { echo "tiny: vmlinux extraction failed" >&2; exit 1; }
  cp "$z" "$out/vmlinuz"
  step "assemble the initramfs"
  local root="$work/root"
  mkdir -p "$root"/{bin,sbin,proc,sys,dev,tmp,run,root,etc}
  cp "$work/b/bin/busybox" "$root/bin/busybox"
  install -m 0755 "$here/init" "$root/init"
  install -m 0644 "$here/inittab" "$root/etc/inittab"
  # virtio-net and what it needs, in load order: init loads them only when
  # the machine has a network card (a scenario's private network).
  mkdir -p "$root/lib/modules"
  local m
  for m in drivers/virtio/virtio_ring drivers/virtio/virtio drivers/virtio/virtio_pci_modern_dev \
           drivers/virtio/virtio_pci_legacy_dev drivers/virtio/virtio_pci net/core/failover \
           drivers/net/net_failover drivers/net/virtio_net; do
    cp "$work/k/lib/modules/$rel/kernel/$m.ko" "$root/lib/modules/"
    echo "${m##*/}" >> "$root/lib/modules/order"
  done
  echo "root:x:0:0:root:/root:/bin/sh" > "$root/etc/passwd"
  printf 'ID=rehearse-tiny\nNAME="Rehearsal tiny"\nVERSION_ID=1\n' > "$root/etc/os-release"
  (cd "$root" && find . | cpio -o -H newc --quiet) > "$out/initrd"
  echo "console=ttyS0,115200 panic=-1 quiet loglevel=4 tsc=reliable no_timer_check mitigations=off cryptomgr.notests" > "$out/cmdline"
  cat > "$out/image.json" <<JSON
{"generations": [{"name": "tiny", "version": "1 (kernel $rel)", "boot": "direct", "kernelRelease": "$rel",
  "kernel": "vmlinux", "initrd": "initrd", "cmdline": "cmdline",
  "description": "busybox in an initramfs, Debian's kernel booted through PVH"}]}
JSON
  step "done: kernel $rel"
}

case "${1:-}" in
  inputs) inputs ;;
  build) build "${2:?usage: build.sh build OUT}" ;;
  debs) ensure_lists; k=$(kernel_pkg); kdeb=$(fetch "$k"); bdeb=$(fetch busybox-static); echo "$kdeb $bdeb" ;;
  *) echo "usage: build.sh inputs | build OUT | debs" >&2; exit 2 ;;
esac
