#!/usr/bin/env bash
# Builds a NixOS-shaped system closure without Nix, for the tests:
#   nixos-system.sh OUT [VERSION]
# OUT/nix/store holds, under store paths named HASH-NAME:
#   busybox        busybox-static with its applets (the closure's only userland)
#   linux          Debian's kernel as bzImage (the tiny recipe's package)
#   initrd         stage 1, as NixOS's does it: load the virtio, 9p and ext4
#                  modules it carries, mount the root filesystem labelled
#                  `nixos`, mount the host's store from 9p tag `nix-store` at
#                  /nix/store, and switch to the `init=` on the command line
#   nixos-system   the toplevel: kernel, initrd (links into the store),
#                  kernel-params, init (stage 2), nixos-version, system, sw
# and OUT/result links to the toplevel, as `nixos-rebuild build` leaves it.
# Links inside the store name /nix/store/..., the path the guest sees.
# Stage 2 does what NixOS's activation does that a shell needs (/bin/sh,
# /run/current-system, /etc) and starts root shells on ttyS0 and ttyS1; with
# LOGIN_PASSWORD set, ttyS1 gets a getty instead, and root that password
# (for the tests of `machine.console`).
set -euo pipefail
export LC_ALL=C
out=${1:?usage: nixos-system.sh OUT [VERSION]}
version=${2:-24.11.19700101.fixture}
repo=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$out"; out=$(cd "$out" && pwd)
store=$out/nix/store
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT

read -r kdeb bdeb < <("$repo/Images/tiny/build.sh" debs)
dpkg-deb -x "$kdeb" "$work/k"
dpkg-deb -x "$bdeb" "$work/b"
rel=$(ls "$work/k/lib/modules")

# A store path's hash: 32 characters of Nix's base-32 alphabet, from the name.
hash() { printf '%s' "$1" | sha256sum | cut -c1-64 | tr 'e' 'x' | cut -c1-32; }
path_of() { echo "$(hash "$1-$version")-$1"; }
bb=$(path_of busybox-1.35.0)
linux=$(path_of "linux-$rel")
initrd=$(path_of "initrd-linux-$rel")
top=$(path_of "nixos-system-fixture-$version")
chmod -R u+w "$store" 2>/dev/null || true
rm -rf "$store" "$out/result"
mkdir -p "$store"

mkdir -p "$store/$bb/bin"
cp "$work/b/bin/busybox" "$store/$bb/bin/busybox"
for applet in $("$work/b/bin/busybox" --list); do
  [ "$applet" = busybox ] || ln -s busybox "$store/$bb/bin/$applet"
done

mkdir -p "$store/$linux"
cp "$work/k/boot/vmlinuz-$rel" "$store/$linux/bzImage"

# Stage 1: the modules it needs, with what they depend on, in load order.
mods=$work/k/lib/modules/$rel/kernel
order=()
add_module() {
  local m=$1 f deps d
  for d in "${order[@]}"; do [ "$d" = "$m" ] && return; done
  f=$(find "$mods" -name "$m.ko" | head -1)
  [ -n "$f" ] || { echo "nixos-system.sh: no module $m in $rel" >&2; exit 1; }
  deps=$(grep -a -o 'depends=[a-z0-9_,-]*' "$f" | head -1 | cut -d= -f2 | tr ',' ' ')
  for d in $deps; do add_module "$d"; done
  order+=("$m")
}
for m in virtio_pci virtio_blk virtio_net 9pnet_virtio 9p ext4 crc32c_generic; do add_module "$m"; done
mkdir -p "$work/initrd/bin" "$work/initrd/lib/modules" "$work/initrd"/{proc,sys,dev,mnt-root}
cp "$work/b/bin/busybox" "$work/initrd/bin/busybox"
for m in "${order[@]}"; do cp "$(find "$mods" -name "$m.ko" | head -1)" "$work/initrd/lib/modules/"; done
printf '%s\n' "${order[@]}" > "$work/initrd/lib/modules/load"
cat > "$work/initrd/init" <<'STAGE1'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo "<<< NixOS Stage 1 (rehearsal fixture) >>>"
fail() { echo "stage 1: $*"; poweroff -f; }
for m in $(cat /lib/modules/load); do insmod "/lib/modules/$m.ko" 2>/dev/null || grep -q "^$m " /proc/modules || fail "cannot load $m"; done
root=
for _ in $(seq 100); do root=$(findfs LABEL=nixos 2>/dev/null) && break; usleep 100000; done
[ -n "$root" ] || fail "no filesystem labelled nixos (the root disk)"
mount -t ext4 "$root" /mnt-root || fail "cannot mount $root"
mkdir -p /mnt-root/nix/store /mnt-root/dev /mnt-root/proc /mnt-root/sys
mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose nix-store /mnt-root/nix/store || fail "cannot mount the store (9p tag nix-store)"
stage2=
for o in $(cat /proc/cmdline); do case $o in init=*) stage2=${o#init=} ;; esac; done
[ -n "$stage2" ] && [ -x "/mnt-root$stage2" ] || fail "no stage 2 init (init= on the command line): $stage2"
mount --move /dev /mnt-root/dev
umount /proc /sys
exec switch_root /mnt-root "$stage2"
STAGE1
chmod 0755 "$work/initrd/init"
mkdir -p "$store/$initrd"
(cd "$work/initrd" && find . | cpio -o -H newc --quiet) > "$store/$initrd/initrd"

mkdir -p "$store/$top"
ln -s "/nix/store/$linux/bzImage" "$store/$top/kernel"
ln -s "/nix/store/$initrd/initrd" "$store/$top/initrd"
ln -s "/nix/store/$bb" "$store/$top/sw"
if [ -n "${LOGIN_PASSWORD:-}" ]; then
  shadow="root:$("$work/b/bin/busybox" mkpasswd -m sha512 "$LOGIN_PASSWORD"):19000:0:99999:7:::"
  ttyS1="ttyS1::respawn:/bin/getty -L 115200 ttyS1 vt100"
else
  shadow="root::19000:0:99999:7:::"
  ttyS1="ttyS1::respawn:-/bin/sh"
fi
echo "loglevel=4 panic=-1 quiet tsc=reliable no_timer_check mitigations=off" > "$store/$top/kernel-params"
echo "$version" > "$store/$top/nixos-version"
echo x86_64-linux > "$store/$top/system"
cat > "$store/$top/init" <<STAGE2
#!/nix/store/$bb/bin/sh
# Stage 2 of the fixture system $top.
systemConfig=/nix/store/$top
export PATH=\$systemConfig/sw/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mkdir -p /run /tmp /etc /bin /root
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
ln -sfn \$systemConfig /run/current-system
ln -sfn \$systemConfig /run/booted-system
ln -sfn \$systemConfig/sw/bin/sh /bin/sh
for tool in login getty; do ln -sfn \$systemConfig/sw/bin/\$tool /bin/\$tool; done
printf 'NAME=NixOS\nID=nixos\nVERSION_ID="24.11"\nPRETTY_NAME="NixOS $version (rehearsal fixture)"\n' > /etc/os-release
echo 'root:x:0:0:root:/root:/bin/sh' > /etc/passwd
echo '$shadow' > /etc/shadow
chmod 0600 /etc/shadow
echo "export PATH=/run/current-system/sw/bin" > /etc/profile
printf 'ttyS0::respawn:-/bin/sh\n$ttyS1\n' > /etc/inittab
hostname nixos
echo "stage 2: \$systemConfig"
exec \$systemConfig/sw/bin/init
STAGE2
chmod 0755 "$store/$top/init"
ln -s "$store/$top" "$out/result"
chmod -R a-w "$store"
echo "$out/result -> $store/$top"
