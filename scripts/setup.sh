#!/usr/bin/env bash
# Installs what Rehearsal needs on a Debian machine, only what is missing:
# libvirt (library and embedded QEMU driver), QEMU, and the tools image recipes use.
# Safe to run again. Needs root (or sudo) for apt-get.
set -euo pipefail

packages=(
  libvirt-dev libvirt-daemon libvirt-daemon-driver-qemu   # libvirt's C API and its QEMU driver (embedded mode: no daemon runs)
  qemu-system-x86 qemu-utils                              # the hypervisor and qemu-img
  cpio xz-utils ca-certificates                           # image recipes: initramfs, kernel extraction
  mmdebstrap e2fsprogs fdisk dpkg                         # the debian recipe: root tree, ext4 from a directory, partition table, .deb packages
  rsync zstd                                              # host capture: the mirror of the host; the debian recipe packs its tree
  pkg-config procps                                       # pkg-config finds libvirt for SwiftPM; pgrep, used by tests to prove nothing is left running
  genisoimage                                             # cloud-init NoCloud seeds (ISO 9660, label cidata)
  chromium                                                # the tests render the HTML compare report in headless Chromium
  perl                                                    # the tests read the TAP report with TAP::Parser
)
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "==> installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# libvirt's QEMU driver resolves its default account (libvirt-qemu) when it
# starts, even though Rehearsal's embedded roots run QEMU as the caller. The
# account normally comes with libvirt-daemon-system, which we don't need.
if ! getent passwd libvirt-qemu >/dev/null; then
  echo "==> creating the libvirt-qemu system account"
  getent group libvirt-qemu >/dev/null || $sudo groupadd --system libvirt-qemu
  $sudo useradd --system --no-create-home -g libvirt-qemu -d /var/lib/libvirt -s /usr/sbin/nologin libvirt-qemu
fi
echo "==> ready: $(qemu-system-x86_64 --version | head -n1), libvirt $(pkg-config --modversion libvirt)"
