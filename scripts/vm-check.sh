#!/usr/bin/env bash
# The lab on a second kernel: Debian 12's stock kernel (6.1: netem, fq, the openvswitch module, cubic) in a
# QEMU VM built from the package archive. For maintainers; CI runs `--subset`.
#
#   scripts/vm-check.sh                  # as root: the whole library in the VM (about 6 min under TCG)
#   scripts/vm-check.sh --subset         # CI's subset: the netem scenario, `switch: ovs` (kernel datapath),
#                                        # an OpenFlow scenario on the kernel datapath, two core scenarios
#   scripts/vm-check.sh NAME|FILE...     # these scenarios only (@NAME-ovs, @NAME-ovs-kernel: variants below)
#
# Options: --out DIR (default results/vm: results.json and reports per scenario, vm-info.json with the VM's
# kernel, congestion control and modules, the install/doctor/run logs), --cache DIR (default
# /var/cache/tcplab; the debootstrap root and the wheels, rebuilt when their inputs change), --timeout SEC
# (the VM's whole life, default 2400), --lock FILE (hold this flock only while the VM runs), --keep (keep
# the disk image).
#
# What it does: a debootstrap root of Debian 12 with the kernel, systemd and the installer's own apt package
# list (read from scripts/install.sh), cached; a copy of this checkout and a wheelhouse for pip (the VM has
# no network); an ext4 disk made from that directory (mke2fs -d: no loop device, no mount). The VM boots it
# with systemd (udev, the Open vSwitch service), and a one-shot unit runs the README's first command
# (scripts/install.sh, which finds its apt packages installed and builds its venv from the wheelhouse),
# `tcplab doctor` and `tcplab run`, then powers off. The results are read back from the powered-off disk
# with debugfs. KVM guests hang on this kind of machine, so QEMU emulates (TCG): about 3x slower than
# the host, which timing bands must allow for.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/scripts/lib/debroot.sh"
say() { printf 'vm-check: %s\n' "$*"; }
die() { printf 'vm-check: %s\n' "$*" >&2; exit 2; }

out="$here/results/vm"; cache=/var/cache/tcplab; timeout_s=2400; lock=; keep=0; subset=0; names=()
while [ $# -gt 0 ]; do
    case $1 in
        --subset) subset=1; shift ;;
        --out) out=$2; shift 2 ;;
        --cache) cache=$2; shift 2 ;;
        --timeout) timeout_s=$2; shift 2 ;;
        --lock) lock=$2; shift 2 ;;
        --keep) keep=1; shift ;;
        -h|--help) sed -n '2,/^set -e/{/^set -e/d; s/^# \{0,1\}//p}' "$0"; exit 0 ;;
        -*) die "unknown option '$1' (allowed: --subset, --out DIR, --cache DIR, --timeout SEC, --lock FILE, --keep)" ;;
        *) names+=("$1"); shift ;;
    esac
done
[ "$(id -u)" -eq 0 ] || die "run as root: debootstrap and mke2fs -d need it"
case $out in /*) ;; *) out="$PWD/$out" ;; esac
case $timeout_s in ''|*[!0-9]*) die "--timeout takes whole seconds, got '$timeout_s'" ;; esac

need=()
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
command -v debugfs >/dev/null || need+=(e2fsprogs)
if [ ${#need[@]} -gt 0 ]; then
    say "installing ${need[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# CI's subset: the delay/loss (netem) lesson; `switch: ovs` on the kernel datapath (zero-window on an OVS
# bridge); an OpenFlow lesson on the kernel datapath (lost-synack, with `switch: ovs`); two core lessons.
# @NAME-ovs is library scenario NAME on an OVS bridge (`switch: ovs`, the kernel datapath); @NAME-ovs-kernel
# is OpenFlow scenario NAME with the lab's controller on the kernel datapath instead of the userspace one.
SUBSET=(rtt-window zero-window listen-overflow @zero-window-ovs @lost-synack-ovs-kernel)
# The whole library, plus variants on the kernel datapath.
ALL=(all @zero-window-ovs @blackhole-ovs-kernel @lost-synack-ovs-kernel @rate-cap-ovs-kernel)
if [ ${#names[@]} -eq 0 ]; then
    if [ $subset = 1 ]; then names=("${SUBSET[@]}"); else names=("${ALL[@]}"); fi
fi

work=; qemu_pid=
cleanup() {
    local rc=$?
    trap - EXIT INT TERM HUP
    if [ -n "$qemu_pid" ] && kill -0 "$qemu_pid" 2>/dev/null &&
            grep -q qemu-system "/proc/$qemu_pid/cmdline" 2>/dev/null; then
        say "stopping the VM (QEMU pid $qemu_pid)"
        kill "$qemu_pid" 2>/dev/null || true
        for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$qemu_pid" 2>/dev/null || break; sleep 0.5; done
        kill -9 "$qemu_pid" 2>/dev/null || true
    fi
    if [ -n "$work" ]; then
        if [ $keep = 1 ] && [ -f "$work/disk.img" ]; then
            say "kept $work/disk.img"
            remove_tree "$work/root" || true
        else
            remove_tree "$work" || true
        fi
    fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

t_start=$(date +%s)
# 1. The root: the kernel, systemd, the installer's apt packages. Cached; rebuilt when the list changes.
VM_PKGS="linux-image-amd64 initramfs-tools systemd-sysv udev kmod e2fsprogs"
pkgs="$VM_PKGS $(installer_packages "$here")"
base=$(cached_root bookworm minbase "$pkgs" "$cache/roots")

# 2. Wheels for the VM's pip (Debian 12's Python 3.11, as on this machine), cached by the package metadata.
wkey=$({ /usr/bin/python3 -V; cat "$here/setup.cfg" "$here/pyproject.toml"; } | sha256sum | cut -c1-12)
wheels="$cache/wheels-$wkey"
if [ ! -f "$wheels/.complete" ]; then
    say "collecting wheels for the VM's pip into $wheels (once; cached)"
    rm -rf "$wheels" "$wheels.partial"
    /usr/bin/python3 -m pip wheel -q -w "$wheels.partial" pip setuptools wheel "$here[test]" \
        > "$cache/wheels.log" 2>&1 || { tail -15 "$cache/wheels.log" >&2; die "pip wheel failed"; }
    rm -f "$wheels.partial"/tcplab-*.whl   # the project itself is installed from its copy, editable
    touch "$wheels.partial/.complete"; mv "$wheels.partial" "$wheels"
    for old in "$cache"/wheels-*; do [ "$old" = "$wheels" ] || rm -rf "$old"; done
fi

# 3. This run's root: the cached one, this checkout (tracked and new files, as the working tree has them),
#    the wheels, the scenarios to run and the unit that runs them.
mkdir -p "$cache/work"
work=$(mktemp -d "$cache/work/vm.XXXXXX")
say "preparing the disk in $work"
cp -a "$base" "$work/root"
root="$work/root"
mkdir -p "$root/root/tcplab" "$root/root/vmcheck/scenarios"
(cd "$here" && git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -a -t "$root/root/tcplab" 2>/dev/null) ||
    (cd "$here" && tar --exclude=./.venv --exclude=./results --exclude=./.git -cf - . | tar -xf - -C "$root/root/tcplab")
rm -rf "$root/root/tcplab/.venv" "$root/root/tcplab/results"
cp -a "$wheels" "$root/root/vmcheck/wheels"
args=()
scenario_file() {     # a library scenario by name: scenarios/TOPIC/NAME.yaml
    find "$here/scenarios" -name "$1.yaml" -not -name '_*' | head -1
}
for n in "${names[@]}"; do
    case $n in
        @*-ovs-kernel)             # OpenFlow with the lab's controller, on the kernel datapath
            base_name=${n#@}; base_name=${base_name%-ovs-kernel}; file=$(scenario_file "$base_name")
            grep -q '^controller: lab' "$file" 2>/dev/null ||
                die "$n: $base_name is not an OpenFlow scenario (controller: lab)"
            sed 's/^controller: lab/controller: lab\nswitch: ovs/' "$file" \
                > "$root/root/vmcheck/scenarios/${n#@}.yaml"
            args+=("/root/vmcheck/scenarios/${n#@}.yaml") ;;
        @*-ovs)                    # the same lesson on an Open vSwitch bridge, kernel datapath
            base_name=${n#@}; base_name=${base_name%-ovs}; file=$(scenario_file "$base_name")
            [ -n "$file" ] && [ -f "$file" ] || die "$n: no scenario $base_name under scenarios/"
            sed 's/^topology:/switch: ovs\ntopology:/' "$file" \
                > "$root/root/vmcheck/scenarios/${n#@}.yaml"
            args+=("/root/vmcheck/scenarios/${n#@}.yaml") ;;
        *.yaml|*.yml)
            [ -f "$n" ] || die "no such scenario file: $n"
            cp "$n" "$root/root/vmcheck/scenarios/"; args+=("/root/vmcheck/scenarios/$(basename "$n")") ;;
        *) args+=("$n") ;;
    esac
done
printf '%s\n' "${args[@]}" > "$root/root/vmcheck/scenarios.txt"
install -m 0755 "$here/scripts/lib/vm-inside.sh" "$root/root/vmcheck/run.sh"
cat > "$root/etc/systemd/system/tcplab-vmcheck.service" <<'UNIT'
[Unit]
Description=tcplab: the README's first command and the scenario library, then power off
After=openvswitch-switch.service systemd-modules-load.service local-fs.target
Wants=openvswitch-switch.service
SuccessAction=poweroff-force
FailureAction=poweroff-force

[Service]
Type=oneshot
ExecStart=/root/vmcheck/run.sh
StandardOutput=journal+console
StandardError=journal+console
TimeoutStartSec=infinity

[Install]
WantedBy=multi-user.target
UNIT
mkdir -p "$root/etc/systemd/system/multi-user.target.wants"
ln -sf /etc/systemd/system/tcplab-vmcheck.service "$root/etc/systemd/system/multi-user.target.wants/"
echo tcplab-vm > "$root/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 tcplab-vm\n' > "$root/etc/hosts"
# No password prompt will ever be answered: the unit does the work and powers off.
ln -sf /dev/null "$root/etc/systemd/system/serial-getty@ttyS0.service"
kernel=$(ls "$root"/boot/vmlinuz-* | sort -V | tail -1); initrd=$(ls "$root"/boot/initrd.img-* | sort -V | tail -1)
cp "$kernel" "$work/vmlinuz"; cp "$initrd" "$work/initrd.img"
mke2fs -q -t ext4 -L tcplab-vm -d "$root" -F "$work/disk.img" 8G >/dev/null
remove_tree "$root"
t_prep=$(date +%s)
say "disk ready in $((t_prep - t_start)) s; booting Debian 12 under QEMU (TCG), up to $timeout_s s"

# 4. Boot. The console goes to a log; lines the unit prints with VMCHECK are shown as they come.
run_vm() {
    qemu-system-x86_64 -machine pc,accel=tcg -m 3072 -smp 2 -display none -monitor none -nodefaults -no-reboot \
        -serial "file:$work/console.log" -pidfile "$work/qemu.pid" -daemonize \
        -kernel "$work/vmlinuz" -initrd "$work/initrd.img" \
        -drive "file=$work/disk.img,if=virtio,format=raw" \
        -append "root=/dev/vda rw console=ttyS0 panic=-1 quiet systemd.show_status=0"
    qemu_pid=$(cat "$work/qemu.pid")
    local shown=0 deadline=$(( $(date +%s) + timeout_s ))
    while kill -0 "$qemu_pid" 2>/dev/null; do
        if [ "$(date +%s)" -ge "$deadline" ]; then
            say "the VM did not power off within $timeout_s s"; return 1
        fi
        shown=$(show_progress "$shown")
        sleep 2
    done
    show_progress "$shown" >/dev/null
    qemu_pid=
}
show_progress() {   # print new VMCHECK lines of the console log; echo how many lines were seen
    local seen=$1 total
    total=$(grep -ac 'VMCHECK ' "$work/console.log" 2>/dev/null || true)
    total=${total:-0}
    if [ "$total" -gt "$seen" ]; then
        grep -a 'VMCHECK ' "$work/console.log" | sed -n "$((seen + 1)),${total}p" | sed 's/.*VMCHECK /  vm: /' >&2
    fi
    echo "$total"
}
if [ -n "$lock" ]; then
    exec 9>>"$lock"
    say "waiting for $lock"
    flock 9
fi
run_vm
[ -n "$lock" ] && flock -u 9 && exec 9>&-
t_vm=$(date +%s)
say "VM powered off after $((t_vm - t_prep)) s"

# 5. Results, read from the powered-off disk.
rm -rf "$out.new"; mkdir -p "$out.new"
debugfs -R "rdump /root/vmcheck/out $out.new" "$work/disk.img" >/dev/null 2>&1 || true
if [ ! -f "$out.new/out/vm-info.json" ]; then
    tail -40 "$work/console.log" >&2
    die "the VM wrote no results (console log above; kept: $work/console.log with --keep)"
fi
cp "$work/console.log" "$out.new/out/console.log"
rm -rf "$out"; mkdir -p "$(dirname "$out")"; mv "$out.new/out" "$out"; rmdir "$out.new"
python3 - "$out" "$((t_vm - t_prep))" "$((t_prep - t_start))" <<'PY'
import json, sys, pathlib
out, vm_s, prep_s = pathlib.Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
info = json.loads((out / "vm-info.json").read_text())
info.update(vm_wall_s=vm_s, prepare_s=prep_s)
(out / "vm-info.json").write_text(json.dumps(info, indent=1) + "\n")
print(f"vm-check: kernel {info['kernel']}, congestion control {info['congestion_control']}, "
      f"modules: {', '.join(m for m in ('openvswitch', 'sch_netem', 'tun') if m in info['modules'])}")
print(f"vm-check: install rc {info['install_rc']} ({info['install_s']} s), run rc {info['run_rc']} "
      f"({info['run_s']} s); VM {vm_s} s, preparation {prep_s} s")
PY
say "results in $out (index.html, one folder per scenario, vm-info.json, run.txt)"
rc=$(python3 -c 'import json,sys; i=json.load(open(sys.argv[1])); print(0 if i["install_rc"] == 0 and i["run_rc"] == 0 else 1)' "$out/vm-info.json")
sed -n '/^ *[0-9]* passed\|passed,/p' "$out/run.txt" | tail -1
exit "$rc"
