#!/usr/bin/env bash
# The README's two commands on another Debian release, as a new user would run them, on this machine's
# kernel, with the lab's network namespaces and Open vSwitch kept apart from the machine's. For maintainers.
#
#   scripts/platform-check.sh trixie          # as root: Debian 13 (Python 3.13, Mininet 2.3.0, OVS 3.5)
#   scripts/platform-check.sh bookworm        # any suite debootstrap knows
#
# Options: --out DIR (default results/platform-SUITE: the logs, results of `tcplab run all`, platform.json),
# --cache DIR (default /var/cache/tcplab; the bare debootstrap root, reused), --keep (keep the root),
# --pytest-args "ARGS" (extra arguments for scripts/test.sh, e.g. "-x -k install"), --lock FILE (hold this
# flock only while the lab runs, in step 2).
#
# How: a bare debootstrap root (minbase, ca-certificates, git) from this machine's package archive, cached;
# a copy of it per run with this checkout cloned into /root/tcplab (uncommitted changes included). The
# root is entered with pivot_root in its own mount, PID, UTS and IPC namespaces: a plain chroot fails,
# because Mininet's `mnexec -a` joins a host's mount namespace, whose root would be the machine's.
#   1. with the machine's network (apt and pip need it): `scripts/test.sh --collect-only -q`, i.e. the
#      installer (apt packages, Open vSwitch started, venv, pip) and the test-only tools, but no test and
#      no lab network; the root's OVS daemons are stopped, and its PID namespace ends with everything in it.
#   2. in a fresh network namespace of its own (no route out, only its loopback): the README's commands,
#      `scripts/install.sh && tcplab run all`, then `scripts/test.sh`. The installer starts the root's OVS
#      there, so its bridges, the lab's hosts and the controller never meet the machine's.
# Everything ends with the namespaces: the mounts, the processes, the network. The root is then removed.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/scripts/lib/debroot.sh"
say() { printf 'platform-check: %s\n' "$*"; }
die() { printf 'platform-check: %s\n' "$*" >&2; exit 2; }

suite=; out=; cache=/var/cache/tcplab; keep=0; pytest_args=; lock=
while [ $# -gt 0 ]; do
    case $1 in
        --lock) lock=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        --cache) cache=$2; shift 2 ;;
        --keep) keep=1; shift ;;
        --pytest-args) pytest_args=$2; shift 2 ;;
        -h|--help) sed -n '2,/^set -e/{/^set -e/d; s/^# \{0,1\}//p}' "$0"; exit 0 ;;
        -*) die "unknown option '$1' (allowed: --out DIR, --cache DIR, --keep, --pytest-args ARGS, --lock FILE)" ;;
        *) [ -z "$suite" ] || die "one suite only (got '$suite' and '$1')"; suite=$1; shift ;;
    esac
done
[ -n "$suite" ] || die "which Debian suite? e.g. scripts/platform-check.sh trixie"
case $suite in *[!a-z0-9-]*) die "a suite is a Debian codename like trixie, got '$suite'" ;; esac
[ -f "/usr/share/debootstrap/scripts/$suite" ] || die "debootstrap does not know '$suite'"
[ "$(id -u)" -eq 0 ] || die "run as root: debootstrap, namespaces and pivot_root need it"
out=${out:-$here/results/platform-$suite}
case $out in /*) ;; *) out="$PWD/$out" ;; esac
command -v debootstrap >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null

work=; inner_pid=
cleanup() {
    local rc=$?
    trap - EXIT INT TERM HUP
    if [ -n "$inner_pid" ] && kill -0 "$inner_pid" 2>/dev/null; then
        # unshare --kill-child: its child, the PID namespace's init, dies with it, and with that init every
        # process in the namespace.
        say "stopping the namespaces (pid $inner_pid)"
        kill -KILL "$inner_pid" 2>/dev/null || true
        wait "$inner_pid" 2>/dev/null || true
    fi
    if [ -n "$work" ]; then
        if [ $keep = 1 ]; then say "kept $work/root"; else remove_tree "$work" || true; fi
    fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

t0=$(date +%s)
base=$(cached_root "$suite" minbase "ca-certificates git" "$cache/roots")
mkdir -p "$cache/work" "$out"
work=$(mktemp -d "$cache/work/platform-$suite.XXXXXX")
root="$work/root"
say "copying the $suite root to $root"
cp -a "$base" "$root"
# The checkout as a new user would have it (a git clone), with this working tree's uncommitted changes.
git clone -q --no-hardlinks "$here" "$root/root/tcplab"
(cd "$here" && git ls-files -z --modified --others --exclude-standard | xargs -0 -r cp --parents -a -t "$root/root/tcplab")
(cd "$here" && git ls-files -z --deleted | (cd "$root/root/tcplab" && xargs -0 -r rm -f))
# pip in the root must trust what this machine trusts (HTTPS here may pass a re-signing proxy).
cp /etc/ssl/certs/ca-certificates.crt "$root/root/host-ca.crt"
cp /etc/resolv.conf "$root/etc/resolv.conf"
install -m 0755 "$here/scripts/lib/platform-inside.sh" "$root/root/platform-inside.sh"

# enter NETWORK PHASE: run /root/platform-inside.sh PHASE in the root, in new namespaces (a new network
# namespace unless NETWORK is "host"), entered with pivot_root. Output goes to $out/PHASE.log.
enter() {
    local network=$1 phase=$2 netflag=--net
    [ "$network" = host ] && netflag=
    # env --default-signal: a script started in the background (`&`, nohup) hands its children SIGINT
    # ignored, and Python then never raises KeyboardInterrupt: the lab's Ctrl-C tests would fail for that.
    env --default-signal unshare --mount --uts --ipc --pid --fork --kill-child $netflag --propagation private -- /bin/sh -c '
        set -e
        r=$1; phase=$2
        mount --bind "$r" "$r"
        cd "$r"
        mount -t proc proc proc
        mount -t sysfs sysfs sys
        mount --rbind /dev dev
        mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts dev/pts
        mount --bind dev/pts/ptmx dev/ptmx
        mount -t tmpfs -o mode=0755 tmpfs run
        mount -t tmpfs -o mode=1777 tmpfs tmp
        mkdir -p dev/shm && mount -t tmpfs -o mode=1777 tmpfs dev/shm
        mkdir -p .oldroot
        pivot_root . .oldroot
        cd /
        umount -l /.oldroot
        rmdir /.oldroot
        hostname "tcplab-$phase"
        exec /usr/bin/env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
            LANG=C.UTF-8 CI="${CI:-}" PIP_CERT=/root/host-ca.crt SSL_CERT_FILE=/root/host-ca.crt \
            REQUESTS_CA_BUNDLE=/root/host-ca.crt TCPLAB_PLATFORM_CHECK=1 PYTEST_ARGS="$3" \
            /bin/bash /root/platform-inside.sh "$phase"
    ' sh "$root" "$phase" "$pytest_args" > "$out/$phase.log" 2>&1 &
    inner_pid=$!
    local rc=0
    wait "$inner_pid" || rc=$?
    inner_pid=
    return $rc
}

say "1/2 installing inside the $suite root, with the machine's network (log: $out/install.log)"
rc1=0; enter host install || rc1=$?
t1=$(date +%s)
say "    rc $rc1 in $((t1 - t0)) s"
[ $rc1 = 0 ] || { tail -30 "$out/install.log" >&2; die "the installation failed"; }

say "2/2 the README's commands in a fresh network namespace (log: $out/run.log)"
if [ -n "$lock" ]; then exec 9>>"$lock"; say "    waiting for $lock"; flock 9; fi
rc2=0; enter isolated run || rc2=$?
if [ -n "$lock" ]; then flock -u 9; exec 9>&-; fi
t2=$(date +%s)
say "    rc $rc2 in $((t2 - t1)) s"
rm -rf "$out/results"
[ -d "$root/root/platform-out/results" ] && cp -a "$root/root/platform-out/results" "$out/results"
[ -f "$root/root/platform-out/platform.json" ] && cp "$root/root/platform-out/platform.json" "$out/platform.json"
grep -E '^[0-9]+ passed|passed,|^=+ .*(passed|failed)' "$out/run.log" | sed 's/^/    /' || true
exit $rc2
