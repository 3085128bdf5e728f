#!/usr/bin/env bash
# tcplab installer: the one set-up step for a fresh Debian 12 / Ubuntu 22.04 / 24.04 machine.
# Used by the README, .ci/run and the Vagrantfile. Idempotent: a second run changes nothing.
#
#   scripts/install.sh               # as root: apt packages, OVS daemons, venv in .venv, `tcplab` on PATH
#   scripts/install.sh --venv DIR    # the venv in DIR instead (also: TCPLAB_VENV=DIR), e.g. outside a
#                                    # synced folder that refuses symlinks (Vagrant's /vagrant)
#   scripts/install.sh --no-link     # leave /usr/local/bin/tcplab alone (also: TCPLAB_NO_LINK=1)
#
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
venv=${TCPLAB_VENV:-$here/.venv}
link=/usr/local/bin/tcplab
[ "${TCPLAB_NO_LINK:-0}" = 1 ] && link=
say() { printf 'tcplab-install: %s\n' "$*"; }
usage() { sed -n '2,10s/^# \{0,1\}//p' "$0"; }

while [ $# -gt 0 ]; do
    case $1 in
        --venv) [ $# -ge 2 ] || { echo "tcplab-install: --venv needs a directory" >&2; exit 2; }
                venv=$2; shift 2 ;;
        --venv=*) venv=${1#--venv=}; shift ;;
        --no-link) link=; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "tcplab-install: unknown argument '$1' (allowed: --venv DIR, --no-link, --help)" >&2; exit 2 ;;
    esac
done
case $venv in /*) ;; *) venv="$PWD/$venv" ;; esac

if [ "$(id -u)" -ne 0 ]; then
    echo "tcplab-install: run as root (or: sudo $0): it installs apt packages and starts Open vSwitch" >&2
    exit 2
fi

# Packages: Mininet comes from the distribution, built for /usr/bin/python3 (with mnexec).
pkgs=(mininet openvswitch-switch bridge-utils iproute2 ethtool tcpdump iperf3 iptables
      iputils-ping net-tools procps kmod python3 python3-venv python3-pip python3-yaml bpftrace)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
    say "apt packages already installed"
fi

# Open vSwitch daemons. Without systemd (containers, CI) start them with ovs-ctl; it works
# without the kernel module (the userspace datapath is then used for OpenFlow scenarios).
if ! timeout 5 ovs-vsctl --timeout=3 show >/dev/null 2>&1; then
    say "starting Open vSwitch daemons"
    if [ -d /run/systemd/system ]; then
        systemctl start openvswitch-switch || true
    fi
    if ! timeout 5 ovs-vsctl --timeout=3 show >/dev/null 2>&1; then
        /usr/share/openvswitch/scripts/ovs-ctl start --system-id=random >/dev/null 2>&1 || \
            /usr/share/openvswitch/scripts/ovs-ctl start >/dev/null
    fi
else
    say "Open vSwitch daemons already running"
fi

# A venv on the system Python, which sees Debian's Mininet: `python3` on PATH may be another one.
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import mininet.net' 2>/dev/null; then
    # Replace only a venv (or an empty directory): --venv may name a directory that holds other things.
    if [ -d "$venv" ] && [ ! -f "$venv/pyvenv.cfg" ] && [ -n "$(ls -A "$venv")" ]; then
        echo "tcplab-install: $venv exists and is not a venv; give --venv a new or empty directory" >&2
        exit 2
    fi
    say "creating $venv on /usr/bin/python3"
    rm -rf "$venv"
    /usr/bin/python3 -m venv --system-site-packages "$venv"
fi
# Reinstall only when the package metadata changed since the last install.
# The project's path is part of it: an editable install points at one checkout.
stamp="$venv/.tcplab-installed"
want=$({ echo "$here"; cat "$here/setup.cfg" "$here/pyproject.toml"; } | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    say "installing tcplab into the venv (with test extras; log: $venv/install.log)"
    if ! { "$venv/bin/python" -m pip install --upgrade pip setuptools wheel &&
           "$venv/bin/python" -m pip install -e "$here[test]"; } > "$venv/install.log" 2>&1; then
        tail -20 "$venv/install.log" >&2
        echo "tcplab-install: pip failed; the whole log is $venv/install.log" >&2
        exit 1
    fi
    echo "$want" > "$stamp"
else
    say "tcplab already installed in $venv"
fi

# `tcplab` on root's PATH (unless --no-link: e.g. a test of the installer on a machine that has one).
if [ -n "$link" ]; then
    if [ "$(readlink "$link" 2>/dev/null)" != "$venv/bin/tcplab" ]; then
        ln -sfn "$venv/bin/tcplab" "$link"
        say "linked $link -> $venv/bin/tcplab"
    fi
    say "done: try 'tcplab doctor'"
else
    say "done (no link on PATH): try '$venv/bin/tcplab doctor'"
fi
