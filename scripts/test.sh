#!/usr/bin/env bash
# tcplab's test command (the README's second command; .ci/run calls it). As root on a fresh machine:
# set everything up with the installer, then run the whole test suite, real-network tests included.
#
#   scripts/test.sh                   # as root: everything
#   scripts/test.sh -k counters       # extra arguments go to pytest
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
venv=${TCPLAB_VENV:-$here/.venv}          # the installer's venv (TCPLAB_VENV: see scripts/install.sh)
case $venv in /*) ;; *) venv="$PWD/$venv" ;; esac
TCPLAB_VENV=$venv "$here/scripts/install.sh"
# Test-only tools: vagrant validates the Vagrantfile; Debian's chromium and its driver load the reports;
# exFAT (exfatprogs, exfat-fuse) makes the symlink-refusing folder of the installer's test; debootstrap and
# QEMU build and boot the VM of scripts/vm-check.sh.
need=()
command -v mkfs.exfat >/dev/null 2>&1 || need+=(exfatprogs)
command -v mount.exfat-fuse >/dev/null 2>&1 || need+=(exfat-fuse)
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
command -v qemu-system-x86_64 >/dev/null 2>&1 || need+=(qemu-system-x86)
command -v vagrant >/dev/null 2>&1 || need+=(vagrant)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
if [ ${#need[@]} -gt 0 ]; then
    echo "tcplab-test: installing ${need[*]} (test-only tools)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
cd "$here"
exec "$venv/bin/python" -m pytest "$@"
