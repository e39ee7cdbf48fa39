#!/bin/busybox sh
# The VM's second-stage init (run.sh puts it at /init2): a kernel booted with
# cgroup_no_v1=all, so every controller is on the unified hierarchy. Runs
# real containers with berth's limits and checks the cgroup files, the OOM
# kill, a fork bomb against the pids limit, stats and removal. Prints one
#   BERTH-VM <check> PASS|FAIL <detail>
# line per check, then `BERTH-VM DONE <passed> <failed>`, and powers off.

export PATH=/usr/local/bin:/bin:/sbin:/usr/bin:/usr/sbin
/bin/busybox --install -s /bin
mkdir -p /proc /sys /dev /tmp /run /var/lib/berth
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
mount -t cgroup2 cgroup2 /sys/fs/cgroup

passed=0
failed=0
result() { # check ok(0|1) detail
  t=$(cut -d' ' -f1 /proc/uptime)
  if [ "$2" = 0 ]; then
    echo "BERTH-VM $1 PASS $3 [${t}s]"
    passed=$((passed + 1))
  else
    echo "BERTH-VM $1 FAIL $3 [${t}s]"
    failed=$((failed + 1))
  fi
}
# expect CHECK FILE VALUE: the file's whole content is VALUE.
expect() {
  got=$(cat "$2" 2>&1)
  [ "$got" = "$3" ]
  result "$1" $? "$(basename "$2")=$got (want $3)"
}
finish() {
  echo "BERTH-VM DONE $passed $failed"
  sync
  poweroff -f
}
B() { timeout 120 berth --root /var/lib/berth "$@"; }
cg=/sys/fs/cgroup/berth

echo "BERTH-VM INFO kernel $(uname -r), $(nproc) cpus, controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"

# The container image: a busybox rootfs, imported as `busybox` (overlayfs
# on its snapshot), or used as --rootfs when overlayfs cannot be loaded.
mkdir -p /img/bin /img/etc /img/tmp /img/root
cp /bin/busybox /img/bin/busybox
for a in sh sleep cat dd echo true tail; do ln -s busybox /img/bin/$a; done
echo 'root:x:0:0:root:/root:/bin/sh' > /img/etc/passwd
echo 'root:x:0:' > /img/etc/group
if insmod /lib/overlay.ko 2>/tmp/insmod.err || grep -q overlay /proc/filesystems; then
  tar -C /img -cf /tmp/busybox.tar .
  B image import /tmp/busybox.tar busybox >/dev/null 2>/tmp/err
  result import $? "$(cat /tmp/err)"
  IMAGE="busybox"
else
  result overlay 1 "cannot load overlayfs: $(cat /tmp/insmod.err); containers use --rootfs"
  IMAGE="--rootfs /img"
fi

out=$(B run --rm --network none $IMAGE echo hello 2>/tmp/err)
[ "$out" = hello ]
result run-rm $? "output: $out $(cat /tmp/err)"

# Every limit at once.
id=$(B run -d --name lim --memory 64m --memory-reservation 32m --cpus 0.5 \
  --cpu-shares 512 --cpuset-cpus 1 --pids-limit 20 $IMAGE sleep 1000 2>/tmp/err)
result run-limits $? "id=$id $(cat /tmp/err)"
for c in cpu cpuset memory pids; do
  grep -qw $c /sys/fs/cgroup/cgroup.subtree_control
  result "enabled-$c" $? "root subtree_control: $(cat /sys/fs/cgroup/cgroup.subtree_control); berth/: $(cat $cg/cgroup.subtree_control 2>&1)"
done
d=$cg/$id
expect memory.max $d/memory.max 67108864
expect memory.low $d/memory.low 33554432
# Docker: --memory alone allows as much swap again; v2 counts swap alone.
expect memory.swap.max $d/memory.swap.max 67108864
expect cpu.max $d/cpu.max "50000 100000"
# runc's (>= 1.3.2) log-scale mapping of shares 512.
expect cpu.weight $d/cpu.weight 59
expect cpuset.cpus $d/cpuset.cpus 1
expect pids.max $d/pids.max 20
pid=$(B inspect lim | sed -n 's/.*"Pid": \([0-9]*\).*/\1/p' | head -n1)
grep -qx "$pid" $d/cgroup.procs
result pid1-in-cgroup $? "pid $pid; cgroup.procs: $(tr '\n' ' ' < $d/cgroup.procs)"
expect pid1-cgroup-file /proc/$pid/cgroup "0::/berth/$id"
out=$(B exec lim cat /proc/self/cgroup 2>&1)
[ "$out" = "0::/berth/$id" ]
result exec-joins $? "exec sees: $out"
cpus=$(B exec lim sh -c 'cat /proc/self/status' 2>&1 | sed -n 's/^Cpus_allowed_list:[[:space:]]*//p')
[ "$cpus" = 1 ]
result exec-cpuset $? "Cpus_allowed_list: $cpus"
line=$(B stats --no-stream lim 2>&1 | grep lim)
echo "$line" | grep -q '/ 64.00MiB' && ! echo "$line" | grep -q ' 0B /' && [ "$(echo "$line" | awk '{print $NF}')" = 1 ]
result stats $? "line: $line"
# A restart is a new shim: the cgroup is made again, limits included.
B restart -t 0 lim >/dev/null 2>/tmp/err
result restart $? "$(cat /tmp/err)"
expect restart-memory.max $d/memory.max 67108864
newpid=$(B inspect lim | sed -n 's/.*"Pid": \([0-9]*\).*/\1/p' | head -n1)
[ -n "$newpid" ] && [ "$newpid" != "$pid" ] && grep -qx "$newpid" $d/cgroup.procs
result restart-pid1-in-cgroup $? "pid $pid -> $newpid; cgroup.procs: $(tr '\n' ' ' < $d/cgroup.procs)"
B rm -f lim >/dev/null 2>&1
[ ! -e "$d" ]
result rm-removes-cgroup $? "$d $( [ -e "$d" ] && echo 'still there' || echo gone)"

# --memory-swap equal to --memory: no swap at all; -1: unlimited swap.
a=$(B run -d --memory 32m --memory-swap 32m $IMAGE sleep 1000)
b=$(B run -d --memory 32m --memory-swap -1 $IMAGE sleep 1000)
expect swap-none $cg/$a/memory.swap.max 0
expect swap-unlimited $cg/$b/memory.swap.max max
B rm -f "$a" "$b" >/dev/null

# No limits: the kernel's defaults stay.
id=$(B run -d $IMAGE sleep 1000)
expect default-memory.max $cg/$id/memory.max max
expect default-pids.max $cg/$id/pids.max max
expect default-cpu.max $cg/$id/cpu.max "max 100000"
expect default-cpu.weight $cg/$id/cpu.weight 100
B rm -f "$id" >/dev/null

# The CPU quota is enforced: a busy loop under --cpus 0.2 gets throttled.
id=$(B run -d --cpus 0.2 $IMAGE sh -c 'while :; do :; done')
sleep 2
throttled=$(sed -n 's/^nr_throttled //p' $cg/$id/cpu.stat)
[ "${throttled:-0}" -gt 0 ]
result cpu-quota-throttles $? "cpu.stat nr_throttled=$throttled"
B rm -f "$id" >/dev/null

# A memory hog beyond --memory (no swap allowed) is OOM-killed.
B run --name oom --memory 32m --memory-swap 32m $IMAGE dd if=/dev/zero of=/dev/null bs=64M count=1 >/tmp/oom.out 2>&1
code=$?
[ $code = 137 ]
result oom-exit-137 $? "exit $code: $(tail -n2 /tmp/oom.out | tr '\n' ' ')"
B inspect oom | grep -q '"OOMKilled": true'
result oom-inspect $? "$(B inspect oom | grep -E 'OOMKilled|ExitCode' | tr -s ' \n' ' ')"
B rm oom >/dev/null 2>&1

# A fork bomb stops at the pids limit, the machine stays usable, and rm
# kills every process of it.
id=$(B run -d --name bomb --pids-limit 16 $IMAGE sh -c 'b() { b | b & }; b; exec sleep 1000')
# Until the kernel has refused a fork (pids.events), sampling the count.
most=0
for i in $(seq 30); do
  current=$(cat $cg/$id/pids.current)
  [ "$current" -gt "$most" ] && most=$current
  events=$(sed -n 's/^max //p' $cg/$id/pids.events)
  [ "${events:-0}" -gt 0 ] && [ $i -ge 3 ] && break
  sleep 0.5
done
[ "$most" -le 16 ] && [ "${events:-0}" -gt 0 ]
result forkbomb-capped $? "most pids seen=$most, refused forks (pids.events max)=$events"
B rm -f bomb >/dev/null 2>&1
result forkbomb-rm $? "rm -f"
[ ! -e "$cg/$id" ]
result forkbomb-cgroup-removed $? "$cg/$id"

left=$(find $cg -mindepth 1 -maxdepth 1 -type d | wc -l)
[ "$left" = 0 ]
result no-cgroups-left $? "$left left under $cg"
ps_out=$(B ps -a -q)
[ -z "$ps_out" ]
result no-containers-left $? "ps -a: $ps_out"
finish
