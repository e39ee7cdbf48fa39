#!/usr/bin/env bash
# Makes qemu and a Debian kernel available for tests/cgroup2-vm/run.sh, in a
# cache directory (default /var/cache/berth-test-vm, or $BERTH_VM_CACHE):
#
#   <cache>/kernel/vmlinuz        Debian's cloud kernel (cgroup2, namespaces,
#   <cache>/kernel/overlay.ko     and overlayfs as a module)
#   <cache>/qemu/                 qemu-system-x86 and the libraries this host
#                                 lacks, unpacked (only when no
#                                 qemu-system-x86_64 is on PATH)
#
# Packages come from the host's apt sources with `apt-get download` and are
# unpacked with dpkg-deb, not installed: a kernel package would run
# initramfs/bootloader hooks and pull systemd/udev upgrades onto the host,
# and qemu-system-x86 from bookworm conflicts with a newer qemu-utils some
# hosts carry. Quick when everything is there already.
#
#   tests/cgroup2-vm/fetch.sh          fetch what is missing
#   tests/cgroup2-vm/fetch.sh --check  only say whether it is there (exit 1 if not)
set -euo pipefail

cache=${BERTH_VM_CACHE:-/var/cache/berth-test-vm}
check_only=0
[ "${1:-}" = "--check" ] && check_only=1

have_qemu() {
  command -v qemu-system-x86_64 >/dev/null 2>&1 || [ -x "$cache/qemu/usr/bin/qemu-system-x86_64" ]
}
have_kernel() {
  [ -s "$cache/kernel/vmlinuz" ] && [ -s "$cache/kernel/overlay.ko" ]
}

if have_qemu && have_kernel; then
  exit 0
fi
if [ $check_only = 1 ]; then
  have_qemu || echo "no qemu-system-x86_64 (on PATH or in $cache/qemu); run tests/cgroup2-vm/fetch.sh"
  have_kernel || echo "no kernel in $cache/kernel; run tests/cgroup2-vm/fetch.sh"
  exit 1
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "fetch.sh: needs root and apt-get to fetch qemu and a kernel" >&2
  exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
# `apt-get download` runs as the _apt user when it can; the temp dir is
# root's.
chmod 755 "$work"
apt_quiet() { DEBIAN_FRONTEND=noninteractive apt-get -q -o Dpkg::Use-Pty=0 -o APT::Sandbox::User=root "$@" >/dev/null; }
apt_quiet update || true

if ! have_kernel; then
  # The metapackage names the current kernel image package.
  image=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
  if [ -z "$image" ]; then
    echo "fetch.sh: no linux-image-cloud-amd64 in the apt sources" >&2
    exit 1
  fi
  apt_quiet download "$image"
  mkdir -p x
  dpkg-deb -x ./*.deb x
  mkdir -p "$cache/kernel.new"
  cp x/boot/vmlinuz-* "$cache/kernel.new/vmlinuz"
  overlay=$(find x/lib/modules -name 'overlay.ko*' | head -n1)
  case "$overlay" in
    *.ko) cp "$overlay" "$cache/kernel.new/overlay.ko" ;;
    *.ko.xz) xz -dc "$overlay" > "$cache/kernel.new/overlay.ko" ;;
    *.ko.zst) zstd -qdc "$overlay" > "$cache/kernel.new/overlay.ko" ;;
    *) echo "fetch.sh: no overlay module in $image" >&2; exit 1 ;;
  esac
  echo "$image" > "$cache/kernel.new/package"
  rm -rf "$cache/kernel" x ./*.deb
  mv "$cache/kernel.new" "$cache/kernel"
fi

if ! have_qemu; then
  # What installing qemu-system-x86 would add to this host, downloaded and
  # unpacked side by side instead.
  pkgs=$(apt-get install -s --no-install-recommends qemu-system-x86 2>/dev/null | awk '/^Inst / {print $2}')
  if [ -z "$pkgs" ]; then
    echo "fetch.sh: apt cannot resolve qemu-system-x86" >&2
    exit 1
  fi
  # shellcheck disable=SC2086
  apt_quiet download $pkgs
  rm -rf "$cache/qemu.new"
  mkdir -p "$cache/qemu.new"
  for deb in ./*.deb; do dpkg-deb -x "$deb" "$cache/qemu.new"; done
  rm -rf "$cache/qemu.new/usr/share/doc" "$cache/qemu.new/usr/share/man" "$cache/qemu.new/usr/share/locale"
  rm -rf "$cache/qemu"
  mv "$cache/qemu.new" "$cache/qemu"
  rm -f ./*.deb
fi
have_qemu && have_kernel
