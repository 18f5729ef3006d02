#!/usr/bin/env bash
# The whole lab: setup (packages, kernel, initramfs, dist/), then every end-to-end suite (doctor scenarios a-f,
# VT-d oracle, simulated-vs-real matrix). Ends with the plain line `N passed, N failed`; exit status 1 when
# anything failed.
# Arguments go to lab/run.ts, e.g. `bash lab/run-all.sh doctor --scenario a`.
set -uo pipefail
LAB="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$LAB/.."
started=$(date +%s)
if ! bash "$LAB/setup.sh"; then
  echo "lab: setup failed (see above)"
  echo
  echo "0 passed, 1 failed"
  exit 1
fi
echo "lab: setup took $(( $(date +%s) - started )) s"
# run.ts prints its own time and, last, the summary line.
exec node --import tsx "$LAB/run.ts" "$@"
