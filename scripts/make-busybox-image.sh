#!/usr/bin/env bash
# Builds a busybox root filesystem from the host's static busybox (Debian's
# busybox-static) and imports it as busybox:latest, since berth has no
# registry access yet. Usage:
#
#   scripts/make-busybox-image.sh [REFERENCE] [--root DIR]
#
# REFERENCE defaults to busybox:latest; the state root to $BERTH_ROOT, else
# /var/lib/berth. Set BERTH to use another berth binary (default: build
# target/release/berth). The tarball is kept as busybox-rootfs.tar in
# $OUT_DIR (default: a temp dir, removed afterwards).
set -euo pipefail
cd "$(dirname "$0")/.."

reference=busybox:latest
root_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --root) root_args=(--root "$2"); shift 2 ;;
    --root=*) root_args=(--root "${1#--root=}"); shift ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) reference="$1"; shift ;;
  esac
done

busybox=""
for candidate in /bin/busybox /usr/bin/busybox; do
  if [ -x "$candidate" ]; then busybox=$candidate; break; fi
done
if [ -z "$busybox" ]; then
  echo "error: no /bin/busybox; install it with: apt-get install busybox-static" >&2
  exit 1
fi
# A dynamically linked busybox would not run inside the container.
if command -v ldd >/dev/null 2>&1 && ldd "$busybox" >/dev/null 2>&1; then
  echo "error: $busybox is dynamically linked; install busybox-static" >&2
  exit 1
fi

if [ -n "${BERTH:-}" ]; then
  berth=$BERTH
else
  cargo build --release --locked --bin berth
  berth=./target/release/berth
fi

if [ -n "${OUT_DIR:-}" ]; then
  out=$OUT_DIR
  mkdir -p "$out"
else
  out=$(mktemp -d)
  trap 'rm -rf "$out"' EXIT
fi
rootfs=$out/rootfs
rm -rf "$rootfs"
mkdir -p "$rootfs"/{bin,dev,etc,proc,root,sys,tmp}
chmod 0700 "$rootfs/root"
chmod 0555 "$rootfs/proc" "$rootfs/sys"
chmod 1777 "$rootfs/tmp"
cp "$busybox" "$rootfs/bin/busybox"
chmod 0755 "$rootfs/bin/busybox"
for applet in $("$busybox" --list); do
  [ "$applet" = busybox ] || ln -sf busybox "$rootfs/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$rootfs/etc/passwd"
printf 'root:x:0:\nnobody:x:65534:\n' >"$rootfs/etc/group"
chmod 0644 "$rootfs/etc/passwd" "$rootfs/etc/group"

# Deterministic: sorted, owned by root, fixed mtime, so the same busybox
# always gives the same layer digest.
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@1700000000 \
  -C "$rootfs" -cf "$out/busybox-rootfs.tar" .
"$berth" "${root_args[@]}" image import "$out/busybox-rootfs.tar" "$reference" \
  --message "busybox rootfs from $busybox"
