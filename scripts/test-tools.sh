#!/usr/bin/env bash
# The tools the unit tests compare against or drive, installed when missing (as root) — run before `npm test`.
# A test whose reference tool is missing fails; this makes sure it is there, or says how to get it.
#
# Usage: bash scripts/test-tools.sh            check, and install what is missing when running as root
#        bash scripts/test-tools.sh --packages print the Debian package names (for .ci/run)
# Environment: IOMMU_KIT_APT_UPDATED=1 says the package lists are fresh (no second apt-get update).
set -euo pipefail

# package -> a file from it that the tests use
declare -A NEED=(
  [acpica-tools]=/usr/bin/iasl                 # iasl -d: the reference DMAR/IVRS decoder
  [pci.ids]=/usr/share/misc/pci.ids            # device names, as lspci reads them
  [libvirt-clients]=/usr/bin/virt-xml-validate # <hostdev> documents validated against libvirt's schema
  [libxml2-utils]=/usr/bin/xmllint             # what virt-xml-validate runs
  [prometheus]=/usr/bin/promtool               # promtool check metrics
  [chromium]=/usr/bin/chromium                 # the browser view's test
  [util-linux]=/usr/bin/setpriv                # refused reads tested as root (drops CAP_DAC_OVERRIDE)
)

if [[ "${1:-}" == "--packages" ]]; then
  printf '%s\n' "${!NEED[@]}" | sort | tr '\n' ' '
  echo
  exit 0
fi

missing=()
for pkg in $(printf '%s\n' "${!NEED[@]}" | sort); do
  [[ -e "${NEED[$pkg]}" ]] || missing+=("$pkg")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

if [[ $(id -u) -ne 0 ]]; then
  echo "test tools missing: ${missing[*]}" >&2
  echo "  install them with:  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
if [[ "${IOMMU_KIT_APT_UPDATED:-}" != 1 ]]; then
  echo "test tools: apt-get update" >&2
  apt-get update -qq >&2
fi
echo "test tools: installing ${missing[*]}" >&2
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
for pkg in "${missing[@]}"; do
  [[ -e "${NEED[$pkg]}" ]] || { echo "test tools: ${NEED[$pkg]} still missing after installing $pkg" >&2; exit 1; }
done
