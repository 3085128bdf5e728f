"""The maintainer scripts' argument handling and the package list they share with the installer."""
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _bash(script, *args):
    return subprocess.run(["bash", script, *args], cwd=ROOT, capture_output=True, text=True, timeout=30)


def test_vm_root_holds_exactly_the_installers_apt_packages():
    text = (ROOT / "scripts/install.sh").read_text()
    listed = set(re.search(r"^pkgs=\((.*?)\)", text, re.S | re.M).group(1).split())
    out = subprocess.run(["bash", "-c", ". scripts/lib/debroot.sh && installer_packages ."], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    assert set(out.split()) == listed and "mininet" in listed and "openvswitch-switch" in listed


def test_vm_check_refuses_unknown_options():
    out = _bash("scripts/vm-check.sh", "--subsett")
    assert out.returncode == 2 and "unknown option '--subsett'" in out.stderr


def test_vm_check_help_lists_the_subset():
    out = _bash("scripts/vm-check.sh", "--help")
    assert out.returncode == 0 and "--subset" in out.stdout and "set -e" not in out.stdout


def test_platform_check_wants_a_suite_debootstrap_knows():
    assert "which Debian suite" in _bash("scripts/platform-check.sh").stderr
    out = _bash("scripts/platform-check.sh", "trixie;reboot")
    assert out.returncode == 2 and "a suite is a Debian codename" in out.stderr
    out = _bash("scripts/platform-check.sh", "nosuchsuite")
    assert out.returncode == 2 and "debootstrap does not know 'nosuchsuite'" in out.stderr
