"""The installed environment is the locked one (requirements.txt), made from requirements.in.

The committed dvc.lock and metrics/ were produced with exactly these versions: another PyAV,
numpy or scikit-learn can decode, encode or compute other bytes. Regenerate the lock with the
command in its header (docs/reproducibility.md, "The locked environment"), then re-install.
"""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)")


def locked() -> dict[str, str]:
    """``{canonical name: version}`` of every pin in requirements.txt."""
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        match = PIN.match(line)
        if match:
            pins[canonicalize_name(match[1])] = match[2]
    return pins


def installed() -> dict[str, str]:
    return {canonicalize_name(d.metadata["Name"]): d.version for d in metadata.distributions()}


def test_every_locked_package_is_installed_at_its_locked_version():
    here = installed()
    drift = {
        name: (version, here.get(name, "not installed"))
        for name, version in locked().items()
        # a local version label (torch's +cu130: which build of the same release) is not drift
        if name not in here or Version(here[name]).public != Version(version).public
    }
    assert not drift, (
        f"installed packages differ from requirements.txt (name: (locked, installed)): {drift}; "
        "re-install with the README's command, or regenerate the lock (docs/reproducibility.md)"
    )


def test_the_lock_is_of_the_top_level_requirements():
    pins = locked()
    assert len(pins) > 100  # the whole tree, not only the top level
    for line in (ROOT / "requirements.in").read_text().splitlines():
        line = line.split("#")[0].strip()
        if not line:
            continue
        req = Requirement(line)
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is in requirements.in but not in the lock: regenerate it"
        assert req.specifier.contains(pins[name], prereleases=True), (
            f"the lock pins {req.name}=={pins[name]}, outside requirements.in's {req.specifier}: "
            "regenerate it"
        )


def test_every_locked_pin_carries_hashes():
    text = (ROOT / "requirements.txt").read_text()
    blocks = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 6)[-1])
    pinned = [b for b in blocks if PIN.match(b)]
    assert pinned and all("--hash=sha256:" in b for b in pinned)
