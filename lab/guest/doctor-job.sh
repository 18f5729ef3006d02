#!/bin/sh
# Runs inside a lab guest (chroot /host, the guest's own /proc /sys /dev): records the sysfs tree the doctor reads,
# then runs the `iommu` CLI of the repository at $REPO against this kernel, and, when $BIND_BDF is set, moves that
# device to vfio-pci with `iommu bind` and back with `iommu unbind`, noting the driver, group and /dev/vfio
# before and after. Results go to $LAB_OUT (the writable share):
#   tree.tar                recorded tree (lab/guest/record-sysfs.mjs), tree/ inside
#   cmd/NAME.{out,err,rc}   each CLI run: stdout, stderr, "EXIT_CODE MILLISECONDS"
#   state-*.txt             "driver=… group=… vfio=…" for $BIND_BDF around bind/unbind
#   timing.txt              how long node takes to start in this guest
# Optional phases (scenarios g and h):
#   $CHECK_BDF              `iommu check BDF --json` -> cmd/check.*
#   $MEMLOCK_BDF            with RLIMIT_MEMLOCK 64 KiB and unlimited, CAP_IPC_LOCK dropped (setpriv), and with
#                           64 KiB as root: `iommu check BDF --guest-memory 4M --json` -> cmd/check-mem-MODE.*,
#                           `iommu status --json` -> cmd/status-mem-MODE.*, and a real 4 MiB VFIO_IOMMU_MAP_DMA
#                           for the device (lab/guest/vfio-probe.py) -> map-MODE.json; the device must be on vfio-pci
#   $RESET_BDFS             moves these devices to vfio-pci (driver_override) and asks VFIO whether it can
#                           reset each and what a hot reset would reset too -> reset-probe.json, vfio-bind.txt
#   $OVERRIDE_BDF           driver_override pci-stub (not loaded), the device let go and probed -> state-override.txt,
#                           `iommu check BDF --json` and `status --json` -> cmd/{check,status}-override.*; then the
#                           override cleared and the device probed -> state-override-cleared.txt; then let go
#                           again, driver_override vfio-pci and probed -> state-override-vfio.txt
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

state() { # [BDF]: the device's (default $BIND_BDF) driver, group and the VFIO group nodes
  d="/sys/bus/pci/devices/${1:-$BIND_BDF}"
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

[ -z "${CHECK_BDF:-}" ] || run check check "$CHECK_BDF" --json

if [ -n "${OVERRIDE_BDF:-}" ]; then
  d="/sys/bus/pci/devices/$OVERRIDE_BDF"
  echo pci-stub >"$d/driver_override"
  [ -L "$d/driver" ] && echo "$OVERRIDE_BDF" >"$d/driver/unbind"
  echo "$OVERRIDE_BDF" >/sys/bus/pci/drivers_probe
  state "$OVERRIDE_BDF" >/tmp/res/state-override.txt
  run check-override check "$OVERRIDE_BDF" --json
  run status-override status --json
  echo >"$d/driver_override"
  echo "$OVERRIDE_BDF" >/sys/bus/pci/drivers_probe
  state "$OVERRIDE_BDF" >/tmp/res/state-override-cleared.txt
  [ -L "$d/driver" ] && echo "$OVERRIDE_BDF" >"$d/driver/unbind"
  echo vfio-pci >"$d/driver_override"
  echo "$OVERRIDE_BDF" >/sys/bus/pci/drivers_probe
  state "$OVERRIDE_BDF" >/tmp/res/state-override-vfio.txt
  echo "driver_override: with pci-stub $(cat /tmp/res/state-override.txt); cleared $(cat /tmp/res/state-override-cleared.txt); vfio-pci $(cat /tmp/res/state-override-vfio.txt)"
fi

PROBE="$REPO/lab/guest/vfio-probe.py"
MAP_BYTES=4194304
as_mode() { # MODE COMMAND...: runs COMMAND with the locked-memory limit and capabilities of MODE
  mode="$1"
  shift
  case "$mode" in
    low) (ulimit -l 64 && exec setpriv --inh-caps=-ipc_lock --bounding-set=-ipc_lock "$@") ;;
    unlimited) (ulimit -l unlimited && exec setpriv --inh-caps=-ipc_lock --bounding-set=-ipc_lock "$@") ;;
    rootlow) (ulimit -l 64 && exec "$@") ;;
  esac
}
if [ -n "${MEMLOCK_BDF:-}" ]; then
  for mode in low unlimited rootlow; do
    as_mode "$mode" sh -c 'grep "^Max locked memory" /proc/self/limits; grep "^CapEff" /proc/self/status' >"/tmp/res/limits-$mode.txt" 2>&1
    as_mode "$mode" python3 "$PROBE" map "$MEMLOCK_BDF" "$MAP_BYTES" >"/tmp/res/map-$mode.json" 2>"/tmp/res/map-$mode.err"
    s=$(now_ms)
    as_mode "$mode" node "$CLI" check "$MEMLOCK_BDF" --guest-memory 4M --json >"/tmp/res/cmd/check-mem-$mode.out" 2>"/tmp/res/cmd/check-mem-$mode.err"
    rc=$?
    echo "$rc $(($(now_ms) - s))" >"/tmp/res/cmd/check-mem-$mode.rc"
    if [ "$mode" != rootlow ]; then
      s=$(now_ms)
      as_mode "$mode" node "$CLI" status --json >"/tmp/res/cmd/status-mem-$mode.out" 2>"/tmp/res/cmd/status-mem-$mode.err"
      rc=$?
      echo "$rc $(($(now_ms) - s))" >"/tmp/res/cmd/status-mem-$mode.rc"
    fi
    echo "memlock $mode: $(tr '\n' ' ' <"/tmp/res/limits-$mode.txt") map: $(cat "/tmp/res/map-$mode.json" "/tmp/res/map-$mode.err")"
  done
fi

if [ -n "${RESET_BDFS:-}" ]; then
  : >/tmp/res/vfio-bind.txt
  for b in $RESET_BDFS; do
    d="/sys/bus/pci/devices/$b"
    [ -L "$d/driver" ] && [ "$(basename "$(readlink "$d/driver")")" != vfio-pci ] && echo "$b" >"$d/driver/unbind"
    echo vfio-pci >"$d/driver_override"
    [ -L "$d/driver" ] || echo "$b" >/sys/bus/pci/drivers_probe
    drv=""
    [ -L "$d/driver" ] && drv="$(basename "$(readlink "$d/driver")")"
    echo "$b driver=$drv" >>/tmp/res/vfio-bind.txt
  done
  # shellcheck disable=SC2086 # one BDF per word
  python3 "$PROBE" reset $RESET_BDFS >/tmp/res/reset-probe.json 2>/tmp/res/reset-probe.err
  echo "reset probe exit $?"
  cat /tmp/res/vfio-bind.txt /tmp/res/reset-probe.json /tmp/res/reset-probe.err
fi

tar -C /tmp -cf "$OUT/tree.tar" tree
cp -r /tmp/res/. "$OUT/"
cat /tmp/res/timing.txt
exit 0
