#!/usr/bin/env bash
# Recipe for the `debian` generations: Debian 12 with systemd on a partitioned
# qcow2 disk with GRUB, and the upgrade payload that goes with it.
#   build.sh inputs       print the identity of every input (for the cache digest)
#   build.sh generations  print the names of the generations it builds
#   build.sh build OUT    build into OUT (see image.json at the end)
# Generations (both boot the same base disk):
#   debian           direct kernel boot: kernel, initrd and command line handed to libvirt
#   debian-firmware  firmware boot: the VM's BIOS runs GRUB from the disk, so what the
#                    guest installs into /boot (a new kernel) is what boots next
#   debian-demo2     derived from debian: rehearse-demo 2.0 installed
#   debian-demo3     derived from debian: rehearse-demo 3.0 installed (broken)
#   debian-cloud     derived from debian, set up as a stock cloud image: cloud-init
#                    enabled (it is installed in all of them, and disabled by
#                    /etc/cloud/cloud-init.disabled elsewhere), reading NoCloud seeds
#                    (a volume labelled cidata); root locked, no autologin anywhere
# Both ship the demo service rehearse-demo 1.0 and the older of the two Debian
# kernels. The payload `repo/` is a local APT repository holding rehearse-demo
# 1.0, 2.0 and 3.0 and the newer kernel (bookworm-security); scenarios attach it
# with `payload: image:debian/repo`. The payload `host-tree/tree.tar.zst` is the
# debian tree packed whole, for the tests of `rehearse host capture --root`.
# The guest gives root shells with no password on ttyS0 (with the kernel log)
# and ttyS1 (the harness's channel), except debian-cloud. No network is configured.
set -euo pipefail
export LC_ALL=C
here=$(cd "$(dirname "$0")" && pwd)
cache=${REHEARSE_DOWNLOAD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rehearse/debs}
suite=bookworm
packages=(systemd systemd-sysv udev dbus initramfs-tools zstd procps iproute2 kmod grub-pc-bin grub2-common cloud-init)
size_mib=2048
fs_uuid=5e4a1c2e-0d1b-4c6e-9a57-726568656172
cmdline="console=ttyS0,115200 panic=-1 quiet loglevel=4 tsc=reliable no_timer_check mitigations=off"

step() { echo "==> $*"; }

# The image gets the oldest linux-image-amd64 APT knows (bookworm's), the
# payload the newest (bookworm-security's), so that a kernel upgrade is real.
kernel_versions() {
  apt-cache madison linux-image-amd64 | awk -F'|' '{gsub(/ /, "", $2); print $2}' | sort -uV
}
old_kernel() { kernel_versions | head -1; }
new_kernel() { kernel_versions | tail -1; }
# The versioned kernel package a linux-image-amd64 version depends on.
kernel_package() { apt-cache show "linux-image-amd64=$1" | sed -n 's/^Depends: \(linux-image-[^ ,]*\).*/\1/p' | head -1; }

inputs() {
  # What mmdebstrap resolves changes only with the package lists: key on them.
  local key f
  key=$(ls -l --time-style=+%s /var/lib/apt/lists/ 2>/dev/null | sha256sum | cut -c1-16)
  f="$cache/debian-inputs-$key"
  if [ -s "$f" ]; then cat "$f"; return; fi
  mkdir -p "$cache"
  local old new
  old=$(old_kernel) new=$(new_kernel)
  { echo "suite $suite size $size_mib cmdline $cmdline"; echo "mmdebstrap $(mmdebstrap --version 2>/dev/null)"
    echo "kernel old $old new $new"
    apt-get download --print-uris "${packages[@]}" "linux-image-amd64=$old" "linux-image-amd64=$new" \
      "$(kernel_package "$old")" "$(kernel_package "$new")" 2>/dev/null | awk '{print $2, $4}'; } > "$f.tmp.$$"
  mv "$f.tmp.$$" "$f"
  cat "$f"
}

# Builds the payload: a flat APT repository (Packages, Release, the .debs).
payload() {
  local repo=$1 new=$2
  mkdir -p "$repo" "$cache"
  for v in 1.0 2.0 3.0; do "$here/demo/build-demo.sh" "$v" "$repo/rehearse-demo_${v}_all.deb"; done
  local kpkg; kpkg=$(kernel_package "$new")
  step "download the newer kernel ($kpkg, linux-image-amd64 $new) into the payload"
  (cd "$cache" && apt-get download -q -o APT::Sandbox::User=root "linux-image-amd64=$new" "$kpkg" >/dev/null)
  cp "$cache"/linux-image-amd64_"${new//:/%3a}"_amd64.deb "$cache/$kpkg"_*_amd64.deb "$repo/"
  echo "${kpkg#linux-image-}" > "$repo/kernel-release"
  (cd "$repo"
   for deb in *.deb; do
     dpkg-deb -f "$deb"
     echo "Filename: ./$deb"
     echo "Size: $(stat -c %s "$deb")"
     echo "SHA256: $(sha256sum "$deb" | cut -d' ' -f1)"
     echo
   done > Packages
   { echo "Origin: Rehearsal"; echo "Label: rehearse-payload"; echo "Suite: rehearse"; echo "Codename: rehearse"
     echo "Architectures: amd64 all"; echo "Date: Thu, 01 Jan 2026 00:00:00 UTC"; echo "SHA256:"
     echo " $(sha256sum Packages | cut -d' ' -f1) $(stat -c %s Packages) Packages"; } > Release
   cat > README <<'TXT'
A local APT repository for Rehearsal's upgrade scenarios. In the guest:
  echo 'deb [trusted=yes] file:/mnt/payload ./' > /etc/apt/sources.list.d/payload.list
  apt-get update
TXT
  )
}

# GRUB for BIOS, installed the way grub-install would but without a loop
# device: boot.img in the MBR, core.img in the gap before the partition (its
# built-in blocklist already points at sector 2), modules and grub.cfg in /boot.
grub_install() {
  local root=$1 disk=$2 rel=$3
  chroot "$root" grub-mkimage -O i386-pc -o /tmp/core.img -p '(hd0,msdos1)/boot/grub' \
    biosdisk part_msdos ext2 normal linux serial terminal search search_label echo test gzio
  mkdir -p "$root/boot/grub/i386-pc"
  cp "$root"/usr/lib/grub/i386-pc/*.mod "$root"/usr/lib/grub/i386-pc/*.lst "$root/boot/grub/i386-pc/"
  mv "$root/tmp/core.img" "$disk.core"
  # Until the guest runs update-grub itself (it does when it installs a kernel).
  cat > "$root/boot/grub/grub.cfg" <<CFG
serial --unit=0 --speed=115200
terminal_input serial
terminal_output serial
set timeout=0
menuentry 'Debian GNU/Linux' {
  insmod part_msdos
  insmod ext2
  search --no-floppy --label --set=root rehearse-root
  linux /boot/vmlinuz-$rel root=LABEL=rehearse-root ro $cmdline
  initrd /boot/initrd.img-$rel
}
CFG
}

# A partitioned disk from a tree: GRUB in the MBR gap, one ext4 partition.
# The filesystem's UUID and times are fixed, so that the same tree
# gives the same bytes (and a derived tree differs only where it differs).
disk_from_tree() {
  local root=$1 disk=$2 part="$work/part.raw"
  rm -f "$part" "$disk"
  E2FSPROGS_FAKE_TIME=1700000000 mkfs.ext4 -q -L rehearse-root -U "$fs_uuid" \
    -d "$root" "$part" "$((size_mib - 1))M" >/dev/null
  truncate -s "${size_mib}M" "$disk"
  echo 'start=2048, type=83, bootable' | sfdisk -q "$disk"
  dd if="$part" of="$disk" bs=1M seek=1 conv=notrunc,sparse status=none
  dd if="$root/usr/lib/grub/i386-pc/boot.img" of="$disk" bs=440 count=1 conv=notrunc status=none
  dd if="$work/disk.core" of="$disk" bs=512 seek=1 conv=notrunc status=none
  rm -f "$part"
}

build() {
  local out=$1
  mkdir -p "$out"; out=$(cd "$out" && pwd)
  work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
  local old new
  old=$(old_kernel) new=$(new_kernel)
  [ -n "$old" ] || { echo "build.sh: APT knows no linux-image-amd64; run apt-get update" >&2; exit 1; }
  [ "$old" != "$new" ] || echo "warning: only one kernel version ($old) is known; the payload's kernel is not newer" >&2
  step "build rehearse-demo 1.0, 2.0, 3.0 and the payload repository"
  payload "$out/repo" "$new"
  step "mmdebstrap $suite with systemd, GRUB and kernel $old (about a minute)"
  DEMO_DEB="$out/repo/rehearse-demo_1.0_all.deb" CMDLINE="$cmdline" \
  mmdebstrap --quiet --variant=minbase --include="$(IFS=,; echo "${packages[*]}"),linux-image-amd64=$old" \
    --aptopt='Apt::Install-Recommends "false"' \
    --customize-hook="$here/customize.sh \"\$1\"" \
    "$suite" "$work/root"
  local rel; rel=$(ls "$work/root/lib/modules")
  step "copy kernel $rel and its initrd out of /boot (for direct boot)"
  cp "$work/root/boot/vmlinuz-$rel" "$out/vmlinuz"
  cp "$work/root/boot/initrd.img-$rel" "$out/initrd"
  step "install GRUB for BIOS boot"
  grub_install "$work/root" "$work/disk" "$rel"
  # The tree as a host that `rehearse host capture --root` can stand in for
  # (the tests unpack it and make it look like a host of its own).
  step "pack the tree as the payload host-tree (for capture tests)"
  mkdir -p "$out/host-tree"
  tar -C "$work/root" --numeric-owner --xattrs --acls -cf - . | zstd -q -T0 -3 -o "$out/host-tree/tree.tar.zst"
  step "make the ext4 root from the tree and a partitioned ${size_mib} MiB disk"
  disk_from_tree "$work/root" "$work/disk.raw"
  step "convert the disk to qcow2"
  qemu-img convert -O qcow2 "$work/disk.raw" "$out/disk.qcow2"
  # debian-cloud: the same tree as a stock cloud image has it: cloud-init
  # enabled (removing the file that disables it is how cloud-init documents
  # switching it back on), root locked, no autologin on either serial port.
  # The harness gets its shell on ttyS1 from the vendor-data of its seed.
  step "derive debian-cloud (cloud-init enabled, root locked, no autologin)"
  # /etc is kept whole and put back after, so that the generations derived
  # next differ from debian only by what they install.
  local etc="$work/root/etc"
  cp -a "$etc" "$work/etc.saved"
  rm -r "$etc/systemd/system/serial-getty@ttyS0.service.d" "$etc/systemd/system/serial-getty@ttyS1.service.d"
  rm "$etc/systemd/system/getty.target.wants/serial-getty@ttyS1.service"
  chroot "$work/root" passwd -q -l root
  rm "$etc/cloud/cloud-init.disabled"
  disk_from_tree "$work/root" "$work/derived.raw"
  qemu-img convert -O qcow2 "$work/derived.raw" "$out/disk-cloud.qcow2"
  rm -f "$work/derived.raw"
  rm -rf "$etc"
  mv "$work/etc.saved" "$etc"
  # Generations derived from `debian`: the same tree with another demo version
  # installed. Each is a whole disk: mkfs.ext4 -d lays the tree out anew, so
  # an overlay of the parent's disk would differ in almost every cluster.
  for v in 2.0 3.0; do
    step "derive debian-demo${v%.0} (rehearse-demo $v) as an overlay of debian's disk"
    cp "$out/repo/rehearse-demo_${v}_all.deb" "$work/root/tmp/demo.deb"
    chroot "$work/root" dpkg -i /tmp/demo.deb >/dev/null
    rm -f "$work/root/tmp/demo.deb"
    disk_from_tree "$work/root" "$work/derived.raw"
    qemu-img convert -O qcow2 "$work/derived.raw" "$out/disk-demo${v%.0}.qcow2"
    rm -f "$work/derived.raw"
  done
  echo "root=LABEL=rehearse-root rw $cmdline" > "$out/cmdline"
  cat > "$out/image.json" <<JSON
{"generations": [
  {"name": "debian", "version": "12 (demo 1.0, kernel $rel)", "boot": "direct",
   "kernel": "vmlinuz", "initrd": "initrd", "cmdline": "cmdline", "kernelRelease": "$rel", "disk": "disk.qcow2",
   "description": "Debian 12 with systemd and rehearse-demo 1.0, direct kernel boot"},
  {"name": "debian-firmware", "version": "12 (demo 1.0, kernel $rel)", "boot": "firmware",
   "kernelRelease": "$rel", "disk": "disk.qcow2", "parent": "debian",
   "description": "the same disk booted by the BIOS through GRUB"},
  {"name": "debian-demo2", "version": "12 (demo 2.0, kernel $rel)", "boot": "direct",
   "kernel": "vmlinuz", "initrd": "initrd", "cmdline": "cmdline", "kernelRelease": "$rel", "disk": "disk-demo2.qcow2",
   "parent": "debian", "description": "debian with rehearse-demo 2.0 (good: new greeting, metrics port 8081)"},
  {"name": "debian-demo3", "version": "12 (demo 3.0, kernel $rel)", "boot": "direct",
   "kernel": "vmlinuz", "initrd": "initrd", "cmdline": "cmdline", "kernelRelease": "$rel", "disk": "disk-demo3.qcow2",
   "parent": "debian", "description": "debian with rehearse-demo 3.0 (broken: its unit fails to start)"},
  {"name": "debian-cloud", "version": "12 (cloud-init, kernel $rel)", "boot": "direct",
   "kernel": "vmlinuz", "initrd": "initrd", "cmdline": "cmdline", "kernelRelease": "$rel", "disk": "disk-cloud.qcow2",
   "parent": "debian", "description": "debian as a stock cloud image: cloud-init reading NoCloud seeds, root locked, no autologin"}
 ],
 "payloads": {"repo": "repo", "host-tree": "host-tree"}}
JSON
  step "done: Debian $suite, kernel $rel; payload kernel $(cat "$out/repo/kernel-release")"
}

case "${1:-}" in
  inputs) inputs ;;
  generations) printf '%s\n' debian debian-firmware debian-demo2 debian-demo3 debian-cloud ;;
  build) build "${2:?usage: build.sh build OUT}" ;;
  *) echo "usage: build.sh inputs | generations | build OUT" >&2; exit 2 ;;
esac
