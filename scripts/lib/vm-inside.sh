#!/bin/bash
# Runs inside the VM that scripts/vm-check.sh boots (a systemd one-shot unit; the VM powers off after it).
# The README's first command, `tcplab doctor`, `tcplab run` on the listed scenarios; everything it learns
# goes to /root/vmcheck/out, which the host reads back from the powered-off disk. Lines starting with
# VMCHECK go to the serial console, which the host shows as progress.
set -u
out=/root/vmcheck/out
mkdir -p "$out"
say() { echo "VMCHECK $*"; echo "$*" >> "$out/progress.log"; }
export HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8
# The VM has no network: pip takes the wheels the host collected (the installer itself is unchanged).
export PIP_NO_INDEX=1 PIP_FIND_LINKS=/root/vmcheck/wheels PIP_DISABLE_PIP_VERSION_CHECK=1

say "booted: kernel $(uname -r), congestion control $(cat /proc/sys/net/ipv4/tcp_congestion_control), $(nproc) CPUs, up $(cut -d' ' -f1 /proc/uptime) s"
cut -d' ' -f1 /proc/modules | sort > "$out/modules-at-boot.txt"
ls -l /dev/net/tun > "$out/dev-net-tun.txt" 2>&1

cd /root/tcplab
t0=$(date +%s.%N)
scripts/install.sh > "$out/install.log" 2>&1
install_rc=$?
t1=$(date +%s.%N)
say "scripts/install.sh: rc $install_rc in $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.0f", b - a}') s"
# Kernel events need tracefs: what systemd mounted, and whether a second, private mount works.
{ findmnt /sys/kernel/tracing
  unshare --mount --propagation private sh -c 'mount -t tracefs tracefs /sys/kernel/tracing; echo "private mount: rc $?"'
} > "$out/tracefs.txt" 2>&1
# This kernel's tracepoint formats (what lab/trace builds its program from; unit tests read a captured copy).
for f in skb/kfree_skb tcp/tcp_probe tcp/tcp_retransmit_skb tcp/tcp_retransmit_synack tcp/tcp_send_reset \
         tcp/tcp_receive_reset sock/inet_sock_set_state; do
    echo "=== $f"; cat "/sys/kernel/tracing/events/$f/format"
done > "$out/tracepoint-formats.txt" 2>&1
# How long bpftrace takes here to start a trivial program and the lab's own (written beside, with every line
# it printed and when): under emulation the verifier is slow, and a run gives up after hub.py's timeout.
/root/tcplab/.venv/bin/python - "$out" > "$out/bpftrace-timing.txt" 2>&1 <<'PY'
import subprocess, sys, threading, time
from lab.trace import kernel, program
out = sys.argv[1]
t0 = time.monotonic()
p = subprocess.run(["bpftrace", "-e", 'BEGIN { printf("hello\\n"); exit(); }'], capture_output=True, text=True,
                   timeout=600)
print(f"trivial program: rc {p.returncode} in {time.monotonic() - t0:.1f} s: {p.stdout.strip()!r} {p.stderr.strip()[-300:]!r}")
plan = program.Plan(ports=frozenset({9000}), marker_pid=1, skip_inum=kernel.netns_inode())
text, _ = program.generate(plan, kernel.offsets(), kernel.formats_by_tracepoint())
open(f"{out}/trace-program.bt", "w").write(text)
t0 = time.monotonic()
proc = subprocess.Popen(kernel.PRIVATE_TRACEFS + ["bpftrace", "-B", "line", "-e", text], stdout=subprocess.PIPE,
                        stderr=subprocess.STDOUT, text=True)
attached = threading.Event()
def read():
    for line in proc.stdout:
        print(f"{time.monotonic() - t0:7.1f} s  {line.rstrip()[:200]}", flush=True)
        if "Attaching" in line:
            attached.set()
threading.Thread(target=read, daemon=True).start()
attached.wait(300)
time.sleep(10)               # the BEGIN block's line, when the probes are in
if proc.poll() is None:
    proc.send_signal(2)
    proc.wait(60)
print(f"lab program: rc {proc.returncode} after {time.monotonic() - t0:.1f} s")
PY
tcplab doctor > "$out/doctor.txt" 2>&1
doctor_rc=$?
say "tcplab doctor: rc $doctor_rc"
mapfile -t scenarios < /root/vmcheck/scenarios.txt
say "tcplab run ${scenarios[*]}"
t2=$(date +%s.%N)
tcplab run "${scenarios[@]}" --out "$out/results" > "$out/run.txt" 2>&1
run_rc=$?
t3=$(date +%s.%N)
grep -E '^\s*(PASS|FAIL|ERROR|SKIP)\b|passed' "$out/run.txt" | grep -vE '^\s+(PASS|FAIL|ERROR|SKIP) in' | head -40 |
    while IFS= read -r line; do say "$line"; done
cut -d' ' -f1 /proc/modules | sort > "$out/modules.txt"
ovs-vsctl --version > "$out/ovs-version.txt" 2>&1
cp /var/log/openvswitch/ovs-vswitchd.log "$out/" 2>/dev/null   # which datapath each bridge used
dmesg > "$out/dmesg.txt" 2>&1
/usr/bin/python3 - "$out" "$install_rc" "$doctor_rc" "$run_rc" "$t0" "$t1" "$t2" "$t3" <<'PY'
import json, os, pathlib, platform, sys
out = pathlib.Path(sys.argv[1])
install_rc, doctor_rc, run_rc = (int(x) for x in sys.argv[2:5])
t0, t1, t2, t3 = (float(x) for x in sys.argv[5:9])
def read(path):
    try:
        return pathlib.Path(path).read_text().strip()
    except OSError:
        return None
release = dict(line.split("=", 1) for line in read("/etc/os-release").splitlines() if "=" in line)
info = {
    "kernel": platform.release(),
    "os": release.get("PRETTY_NAME", "").strip('"'),
    "python": platform.python_version(),
    "congestion_control": read("/proc/sys/net/ipv4/tcp_congestion_control"),
    "congestion_control_available": (read("/proc/sys/net/ipv4/tcp_available_congestion_control") or "").split(),
    "qdisc_default": read("/proc/sys/net/core/default_qdisc"),
    # a stock kernel's own defaults, in its own namespace (the lab never writes these): what tcplab's hosts get
    "sysctls": {k: " ".join((read("/proc/sys/" + k.replace(".", "/")) or "").split())
                for k in ("net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem", "net.core.somaxconn", "net.ipv4.tcp_syncookies")},
    "cpus": os.cpu_count(),
    "mem_total_kb": int(read("/proc/meminfo").split()[1]),
    "modules": (out / "modules.txt").read_text().split(),
    "modules_at_boot": (out / "modules-at-boot.txt").read_text().split(),
    "ovs": (read(out / "ovs-version.txt") or "").splitlines()[0:1],
    "install_rc": install_rc, "install_s": round(t1 - t0, 1),
    "doctor_rc": doctor_rc,
    "run_rc": run_rc, "run_s": round(t3 - t2, 1),
    "scenarios": (pathlib.Path("/root/vmcheck/scenarios.txt").read_text().split()),
}
(out / "vm-info.json").write_text(json.dumps(info, indent=1) + "\n")
PY
say "done: install rc $install_rc, run rc $run_rc; powering off"
sync
