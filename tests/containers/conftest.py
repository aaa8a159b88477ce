"""A real Podman for the container tests: private storage and one busybox image per session.

The image is a busybox rootfs (``busybox-static``, every applet linked) imported once with
``podman import``; no registry is needed. Podman's state lives in a short temporary folder
(``PODIUM_CONTAINER_ROOT``), removed at the end. Without podman, runc or a static busybox the
tests are skipped, except under CI, where ``scripts/test.sh`` installs them and a missing one
is a failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from container_helpers import IMAGE

from podium.executors.container_runtime import Runtime, detect


def _missing() -> list[str]:
    missing = [p for p in ("podman", "runc") if shutil.which(p) is None]
    if _busybox() is None:
        missing.append("busybox-static")
    return missing


def _busybox() -> str | None:
    for path in ("/bin/busybox", "/usr/bin/busybox", shutil.which("busybox")):
        if path and os.path.isfile(path):
            return path
    return None


def _rootfs(folder: Path) -> Path:
    fs = folder / "fs"
    for d in ("bin", "proc", "sys", "dev", "etc", "tmp", "work"):
        (fs / d).mkdir(parents=True, exist_ok=True)
    busybox = fs / "bin" / "busybox"
    shutil.copy2(_busybox() or "", busybox)
    applets = subprocess.run([str(busybox), "--list"], capture_output=True, text=True, check=True).stdout
    for name in applets.split():
        link = fs / "bin" / name
        if name != "busybox" and not link.exists():
            link.symlink_to("busybox")
    (fs / "etc" / "passwd").write_text("root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534::/:/bin/sh\n")
    return fs


@pytest.fixture(scope="session")
def podman() -> Iterator[Runtime]:
    """A Podman runtime with private storage holding ``IMAGE``; the env points Podium at it."""
    missing = _missing()
    if missing:
        reason = f"{', '.join(missing)} not installed (scripts/test.sh installs them when run as root)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    root = tempfile.mkdtemp(prefix="podium-ctr-", dir="/tmp")  # Podman wants a short --runroot
    saved = {k: os.environ.get(k) for k in ("PODIUM_CONTAINER_ROOT", "PODIUM_CONTAINER_RUNTIME")}
    os.environ["PODIUM_CONTAINER_ROOT"] = root
    os.environ["PODIUM_CONTAINER_RUNTIME"] = "podman"
    try:
        rt = detect()
        fs = _rootfs(Path(root))
        tar = subprocess.Popen(["tar", "-C", str(fs), "-c", "."], stdout=subprocess.PIPE)
        imported = subprocess.run([*rt.base(), "import", "-", IMAGE], stdin=tar.stdout, capture_output=True)
        tar.wait()
        assert tar.stdout is not None
        tar.stdout.close()
        assert imported.returncode == 0, imported.stderr.decode()
        shutil.rmtree(fs)
        check = rt.command("run", "--rm", "--network", "none", "--ulimit", "nofile=1024:1024",
                           "--ulimit", "nproc=1024:1024", IMAGE, "true")  # fmt: skip
        assert check.returncode == 0, f"the busybox image does not run (is busybox static?): {check.stderr}"
        yield rt
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        base = ["podman", "--root", f"{root}/root", "--runroot", f"{root}/run"]
        subprocess.run([*base, "rm", "--all", "--force", "--time", "0"], capture_output=True, check=False)
        subprocess.run([*base, "rmi", "--all", "--force"], capture_output=True, check=False)
        _unmount_below(root)  # Podman keeps its overlay folder mounted on itself
        shutil.rmtree(root, ignore_errors=True)


def _unmount_below(root: str) -> None:
    with open("/proc/self/mounts", encoding="utf-8") as f:
        points = [line.split()[1] for line in f if line.split()[1].startswith(root + "/")]
    for point in sorted(points, reverse=True):
        subprocess.run(["umount", point], capture_output=True, check=False)
