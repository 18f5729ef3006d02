#!/bin/sh
# Runs inside a lab guest (chroot /host, the guest's own /proc /sys /dev): records the sysfs tree the doctor reads,
# then runs the `iommu` CLI of the repository at $REPO against this kernel, and, when $BIND_BDF is set, moves that
# device to vfio-pci with `iommu bind` and back with `iommu unbind`, noting the driver, group and /dev/vfio
# before and after. Results go to $LAB_OUT (the writable share):
#   tree.tar                recorded tree (lab/guest/record-sysfs.mjs), tree/ inside
#   cmd/NAME.{out,err,rc}   each CLI run: stdout, stderr, "EXIT_CODE MILLISECONDS"
#   state-*.txt             "driver=… group=… vfio=…" for $BIND_BDF around bind/unbind
#   timing.txt              how long node takes to start in this guest
# Everything is written to /tmp first: many small writes over 9p are slow under TCG.
set -u
OUT="${LAB_OUT:-/tmp/out}"
: "${REPO:?REPO must name the repository}"
CLI="$REPO/bin/iommu.js"
mkdir -p /tmp/res/cmd

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

t0=$(now_ms)
node -e 0
t1=$(now_ms)
echo "node_start_ms $((t1 - t0))" >/tmp/res/timing.txt

node "$REPO/lab/guest/record-sysfs.mjs" /tmp/tree >/tmp/res/record.log 2>&1
t2=$(now_ms)
echo "record_ms $((t2 - t1))" >>/tmp/res/timing.txt

run() { # NAME ARGS...: runs `iommu ARGS...`
  name="$1"
  shift
  s=$(now_ms)
  node "$CLI" "$@" >"/tmp/res/cmd/$name.out" 2>"/tmp/res/cmd/$name.err"
  rc=$?
  e=$(now_ms)
  echo "$rc $((e - s))" >"/tmp/res/cmd/$name.rc"
  echo "iommu $* -> exit $rc in $((e - s)) ms"
}

state() { # the bind target's driver, group and the VFIO group nodes
  d="/sys/bus/pci/devices/$BIND_BDF"
  drv=""
  [ -L "$d/driver" ] && drv="$(basename "$(readlink "$d/driver")")"
  grp=""
  [ -L "$d/iommu_group" ] && grp="$(basename "$(readlink "$d/iommu_group")")"
  echo "driver=$drv group=$grp vfio=$(ls /dev/vfio 2>/dev/null | tr '\n' ' ')"
}

run version --version
run status status --json
run groups groups --json

if [ -n "${BIND_BDF:-}" ]; then
  state >/tmp/res/state-before.txt
  run bind bind "$BIND_BDF"
  state >/tmp/res/state-bound.txt
  run status-bound status --json
  run unbind unbind "$BIND_BDF"
  state >/tmp/res/state-unbound.txt
fi

tar -C /tmp -cf "$OUT/tree.tar" tree
cp -r /tmp/res/. "$OUT/"
cat /tmp/res/timing.txt
exit 0
