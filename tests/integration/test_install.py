"""The installer where Vagrant puts the project: a synced folder that refuses symlinks.

VirtualBox shared folders on Windows hosts (and on macOS by default) refuse symlinks, which
`python3 -m venv` needs. This machine simulates one with an exFAT file system, which has no symlinks: an
image file on a loop device, mounted with exfat-fuse (the development machines' kernel has no vfat or exfat
driver; FUSE it has), holding a copy of the project. Its files show as root's, mode 0755, as a shared folder's do. The installer runs from there with
its venv elsewhere (`--venv`, as the Vagrantfile's provisioner does) and must not create one in the folder.
It never re-points /usr/local/bin/tcplab (`--no-link`): that link belongs to this machine's own checkout.
"""
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
INSTALL = "scripts/install.sh"
LINK = Path("/usr/local/bin/tcplab")

pytestmark = [pytest.mark.root, pytest.mark.slow]


def _run(argv, **kwargs):
    return subprocess.run(argv, capture_output=True, text=True, check=True, **kwargs).stdout.strip()


def _project_files():
    listed = _run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT)
    return [p for p in listed.split("\0") if p and (ROOT / p).is_file()]


@pytest.fixture
def symlink_refusing_copy(tmp_path):
    """A copy of the project on an exFAT file system on a loop device; unmounted and detached afterwards."""
    for tool, package in (("mkfs.exfat", "exfatprogs"), ("mount.exfat-fuse", "exfat-fuse")):
        if not shutil.which(tool):
            pytest.fail(f"{tool} is missing (apt install {package}): scripts/test.sh installs it")
    image, mnt = tmp_path / "synced.img", tmp_path / "synced"
    mnt.mkdir()
    with open(image, "wb") as f:
        f.truncate(96 * 1024 * 1024)
    _run(["mkfs.exfat", "-L", "SYNCED", str(image)])
    loop = _run(["losetup", "--find", "--show", str(image)])
    mounted = False
    try:
        # Every file 0755 and owned by root, as a shared folder shows them.
        _run(["mount", "-t", "exfat-fuse", "-o", "uid=0,gid=0,fmask=0022,dmask=0022", loop, str(mnt)])
        mounted = True
        for rel in _project_files():
            (mnt / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(ROOT / rel, mnt / rel)
        yield mnt
    finally:
        if mounted:
            subprocess.run(["umount", str(mnt)], check=False)
        subprocess.run(["losetup", "-d", loop], check=False)
        assert str(image) not in _run(["losetup", "--list", "--noheadings", "--output", "BACK-FILE"])


def _link_target():
    return os.readlink(LINK) if LINK.is_symlink() else None


def _tree(path):
    return {str(p.relative_to(path)): p.lstat().st_mtime_ns for p in path.rglob("*")}


def test_installer_in_a_folder_that_refuses_symlinks(symlink_refusing_copy, tmp_path):
    folder = symlink_refusing_copy
    with pytest.raises(OSError):                  # the simulation is faithful: no symlinks here
        os.symlink("README.md", folder / "a-link")
    link_before = _link_target()
    venv = tmp_path / "venv"                      # outside the folder, as the Vagrantfile's provisioner does

    first = subprocess.run(["bash", INSTALL, "--venv", str(venv), "--no-link"], cwd=folder,
                           capture_output=True, text=True, timeout=900)
    assert first.returncode == 0, first.stdout + first.stderr
    assert f"creating {venv}" in first.stdout
    assert not (folder / ".venv").exists(), "the installer created a venv in the synced folder"
    assert not [p for p in folder.rglob("*") if p.is_symlink()]
    # The venv runs the project from the folder (an editable install), and the CLI works.
    where = _run([str(venv / "bin/python"), "-c", "import lab; print(lab.__file__)"], cwd=tmp_path)
    assert where == str(folder / "lab/__init__.py")
    assert "doctor" in _run([str(venv / "bin/tcplab"), "--help"], cwd=tmp_path)

    # A second run (a second `vagrant provision`) changes nothing in the venv.
    tree = _tree(venv)
    second = subprocess.run(["bash", INSTALL, "--no-link"], cwd=folder, capture_output=True, text=True,
                            timeout=300, env={**os.environ, "TCPLAB_VENV": str(venv)})
    assert second.returncode == 0, second.stdout + second.stderr
    assert "apt packages already installed" in second.stdout
    assert f"tcplab already installed in {venv}" in second.stdout
    assert _tree(venv) == tree
    assert not (folder / ".venv").exists()
    assert _link_target() == link_before


def test_default_venv_fails_there(symlink_refusing_copy):
    """Without --venv the venv goes into the project folder, and fails there: the trap the option avoids."""
    folder = symlink_refusing_copy
    out = subprocess.run(["bash", INSTALL, "--no-link"], cwd=folder, capture_output=True, text=True, timeout=300)
    assert out.returncode != 0
    # venv's own error, naming the symlink it could not make in the folder's .venv (the errno depends on
    # the file system: EPERM on vfat, EPROTO on a VirtualBox shared folder, ENOSYS on exFAT over FUSE).
    assert "Error: [Errno" in out.stderr and f"{folder}/.venv/" in out.stderr, out.stdout + out.stderr


def test_venv_option_refuses_a_directory_that_is_not_a_venv(tmp_path):
    keep = tmp_path / "not-a-venv"
    keep.mkdir()
    (keep / "precious.txt").write_text("mine")
    out = subprocess.run(["bash", str(ROOT / INSTALL), "--venv", str(keep), "--no-link"], capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 2
    assert "is not a venv" in out.stderr
    assert (keep / "precious.txt").read_text() == "mine"


def test_installer_rejects_unknown_arguments():
    out = subprocess.run(["bash", str(ROOT / INSTALL), "--venf", "x"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "allowed: --venv DIR, --no-link" in out.stderr
