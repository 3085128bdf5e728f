#!/bin/bash
# Runs inside the root of scripts/platform-check.sh, after pivot_root, as PID 1's child of its own PID
# namespace. Phase "install" has the machine's network; phase "run" has a network namespace of its own.
set -u
phase=$1
cd /root/tcplab
ovs_stop() { /usr/share/openvswitch/scripts/ovs-ctl stop >/dev/null 2>&1 || true; }

case $phase in
install)
    # The installer and the test-only tools, with the network: test.sh without running a test.
    scripts/test.sh --collect-only -q -p no:cacheprovider | tail -3
    rc=${PIPESTATUS[0]}
    # Wheels for the installer's own test (it builds a second venv) when there is no network to pip from.
    .venv/bin/python -m pip wheel -q -w /root/wheels pip setuptools wheel '.[test]' || rc=1
    ovs_stop              # this phase shares the machine's network; the lab's OVS runs in phase "run"
    exit "$rc"
    ;;
run)
    ip link set lo up
    export PIP_NO_INDEX=1 PIP_FIND_LINKS=/root/wheels     # no route out: pip installs from the wheels
    mkdir -p /root/platform-out
    echo "== scripts/install.sh && tcplab run all"
    t0=$(date +%s)
    scripts/install.sh && tcplab run all --out /root/platform-out/results
    run_rc=$?
    t1=$(date +%s)
    echo "== scripts/test.sh $PYTEST_ARGS"
    # shellcheck disable=SC2086  # PYTEST_ARGS is a list of words by design
    scripts/test.sh -p no:cacheprovider $PYTEST_ARGS
    test_rc=$?
    t2=$(date +%s)
    ovs_stop
    /usr/bin/python3 - "$run_rc" "$test_rc" "$((t1 - t0))" "$((t2 - t1))" <<'PY' | tee /root/platform-out/platform.json
import json, platform, subprocess, sys
def pkg(name):
    r = subprocess.run(["dpkg-query", "-W", "-f=${Version}", name], capture_output=True, text=True)
    return r.stdout or None
def pip(name):
    r = subprocess.run([".venv/bin/python", "-m", "pip", "show", name], capture_output=True, text=True)
    return next((l.split(": ", 1)[1] for l in r.stdout.splitlines() if l.startswith("Version: ")), None)
release = dict(l.split("=", 1) for l in open("/etc/os-release").read().splitlines() if "=" in l)
statuses = {}
try:   # summary.json: one entry per scenario run, with its status
    for entry in json.load(open("/root/platform-out/results/summary.json")):
        statuses[entry["status"]] = statuses.get(entry["status"], 0) + 1
except (OSError, ValueError, TypeError, KeyError):
    pass
print(json.dumps({
    "os": release.get("PRETTY_NAME", "").strip('"'), "kernel": platform.release(),
    "python": platform.python_version(), "mininet": pkg("mininet"), "openvswitch": pkg("openvswitch-switch"),
    "os-ken": pip("os-ken"), "eventlet": pip("eventlet"), "pyyaml": pip("PyYAML"),
    "run_all_rc": int(sys.argv[1]), "run_all_s": int(sys.argv[3]),
    "test_rc": int(sys.argv[2]), "test_s": int(sys.argv[4]),
    "run_all_statuses": statuses,
}, indent=1))
PY
    [ "$run_rc" = 0 ] && [ "$test_rc" = 0 ]
    ;;
*)
    echo "unknown phase $phase" >&2; exit 2 ;;
esac
