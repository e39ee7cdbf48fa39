#!/usr/bin/env bash
# berth's cgroup v2 limits on a real kernel: boots Debian's cloud kernel in
# qemu with every controller on the unified hierarchy (cgroup_no_v1=all),
# from an initramfs built here (busybox, the berth binary and the libraries
# it links, tests/cgroup2-vm/init.sh as the init), and prints the init's
# result lines:
#
#   BERTH-VM <check> PASS|FAIL <detail>
#   BERTH-VM DONE <passed> <failed>
#
#   tests/cgroup2-vm/run.sh [BERTH_BINARY]     (default: $BERTH_BIN, then
#                                               target/debug/berth)
#
# Exit status: 0 every check passed; 1 a check failed; 2 the VM did not
# finish (its console is printed); 3 qemu or the kernel is missing (run
# tests/cgroup2-vm/fetch.sh, which scripts/test.sh does).
#
# qemu runs under TCG (software emulation): /dev/kvm may exist on a cloud VM
# without working nested virtualization, where KVM hangs instead of failing.
# BERTH_VM_ACCEL=kvm uses KVM where it works. Two vCPUs, so that
# --cpuset-cpus can pin a container to a CPU other than the default; one
# would save ~3 s of the ~22 s this takes on an idle host (about 16 s of
# qemu CPU with a debug berth, 12 s with a release one).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
berth=${1:-${BERTH_BIN:-$here/../../target/debug/berth}}
cache=${BERTH_VM_CACHE:-/var/cache/berth-test-vm}
accel=${BERTH_VM_ACCEL:-tcg}
timeout_s=${BERTH_VM_TIMEOUT:-600}

if ! reason=$("$here/fetch.sh" --check); then
  echo "$reason"
  exit 3
fi
if [ ! -x "$berth" ]; then
  echo "no berth binary at $berth (cargo build -p berth-agent)" >&2
  exit 3
fi
if [ ! -x /bin/busybox ]; then
  echo "no /bin/busybox (apt-get install busybox-static)" >&2
  exit 3
fi

qemu=$(command -v qemu-system-x86_64 || true)
qemu_args=()
if [ -z "$qemu" ]; then
  qemu=$cache/qemu/usr/bin/qemu-system-x86_64
  # Some of Debian's library packages (libnl-3-200, libbrlapi) still ship
  # under /lib rather than /usr/lib.
  export LD_LIBRARY_PATH=$cache/qemu/usr/lib/x86_64-linux-gnu:$cache/qemu/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  qemu_args+=(-L "$cache/qemu/usr/share/qemu")
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The initramfs: a first-stage /init that makes the payload dir the root
# through a bind mount (pivot_root, which every container needs, refuses to
# move the initramfs' own root, but takes a mount on top of it; binding
# instead of copying saves a copy of ~60 MB under emulation), and the
# payload itself.
root=$work/root
payload=$root/payload
mkdir -p "$root/bin" "$payload/bin" "$payload/usr/local/bin" "$payload/lib"
cp /bin/busybox "$root/bin/busybox"
cp /bin/busybox "$payload/bin/busybox"
# Line tables are of no use in the VM.
if command -v strip >/dev/null; then
  strip --strip-debug -o "$payload/usr/local/bin/berth" "$berth"
else
  cp "$berth" "$payload/usr/local/bin/berth"
fi
for lib in $(ldd "$berth" | grep -o '/[^ ]*'); do
  mkdir -p "$payload$(dirname "$lib")"
  cp -L "$lib" "$payload$lib"
done
cp "$cache/kernel/overlay.ko" "$payload/lib/overlay.ko"
cp "$here/init.sh" "$payload/init2"
chmod 755 "$payload/init2"
cat > "$root/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox mount --bind /payload /payload
cd /payload
/bin/busybox mount --move . /
exec /bin/busybox chroot . /init2
EOF
chmod 755 "$root/init"
(cd "$root" && find . | /bin/busybox cpio -o -H newc 2>/dev/null) > "$work/initrd.cpio"

console=$work/console.log
set +e
TIMEFORMAT='%0R s wall, %0U+%0S s CPU'
{ time timeout "$timeout_s" "$qemu" "${qemu_args[@]}" \
  -accel "$accel" -m 1024 -smp 2 \
  -nographic -no-reboot -nic none \
  -kernel "$cache/kernel/vmlinuz" -initrd "$work/initrd.cpio" \
  -append "console=ttyS0 cgroup_no_v1=all panic=-1 loglevel=1" \
  </dev/null >"$console" 2>&1; } 2>"$work/time"
qemu_status=$?
set -e
elapsed=$(cat "$work/time")

results=$(tr -d '\r' < "$console" | grep -a '^BERTH-VM ' || true)
echo "$results"
echo "BERTH-VM TIME $elapsed (qemu $accel, load $(cut -d' ' -f1 /proc/loadavg), exit $qemu_status)"
done_line=$(echo "$results" | grep '^BERTH-VM DONE ' || true)
if [ -z "$done_line" ]; then
  echo "the VM did not finish; its console:" >&2
  tr -d '\r' < "$console" | tail -n 60 >&2
  exit 2
fi
failed=$(echo "$done_line" | awk '{print $4}')
[ "$failed" = 0 ] || exit 1
exit 0
