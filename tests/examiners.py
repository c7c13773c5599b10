"""Examiners for tests: each in a profile of their own (a key pair in its own folder, as another
login on another PC would have), registered in a gallery by its first administrator.

The test's own profile (conftest points the config folder into tmp_path) belongs to whoever
creates the gallery (usually "examiner1", the `gallery` fixture's examiner): they are its first
administrator with every role. `open_as(folder, "bob")` opens the gallery as bob, from bob's own
profile, registering bob's key first (with every role unless `roles` says otherwise) through the
same audited act an administrator uses.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from workstation import identity
from workstation.audit.roles import ALL_ROLES, Role
from workstation.domain import examiner_key
from workstation.gallery.examiners import register_examiner
from workstation.gallery.opening import gallery_kind
from workstation.gallery.store import Gallery
from workstation.identity import Examiner


def profiles_root() -> Path:
    """Where other examiners' profiles live: beside the test's own config folder."""
    return Path(os.environ["WORKSTATION_CONFIG_DIR"]).parent / "profiles"


def own_examiner(user: str | None = None) -> Examiner:
    """The test's own profile (the config folder), acting as `user`."""
    return Examiner.current(user)


def profile_of(name: str) -> Path:
    return profiles_root() / examiner_key(name).replace(" ", "_")


def examiner(name: str) -> Examiner:
    """`name` with the profile of their own (made on first use); not registered anywhere."""
    return Examiner(name, profile_of(name))


def administrator_name(folder: Path) -> str:
    """The name the test's own profile is registered under in the gallery."""
    with Gallery(folder, read_only=True) as gallery:
        key = own_examiner().key()
        registered = gallery.examiner_by_fingerprint(key.fingerprint)
    assert registered is not None, "the test's own profile is not registered in this gallery"
    return registered.name


def register(
    folder: Path, name: str, roles: Iterable[Role | str] = ALL_ROLES, by: str | None = None
) -> Examiner:
    """Register `name`'s key (from their own profile) in the gallery, by its administrator."""
    person = examiner(name)
    with Gallery(folder, user=by or administrator_name(folder)) as admin:
        register_examiner(admin, name, person.public_key_text(), Role.parse(roles))
    return person


def as_examiner(folder: Path, name: str, roles: Iterable[Role | str] = ALL_ROLES) -> Examiner:
    """The examiner acting as `name` in the gallery: the test's own profile when that is
    registered under `name` (any spelling), else `name`'s own profile, registered on first use."""
    own = own_examiner(name)
    if gallery_kind(folder) is None:
        return own  # whoever creates the gallery is its first administrator
    with Gallery(folder, read_only=True) as gallery:
        if gallery.genesis_event() is None:
            return own  # an agency gallery set up, not opened yet: the same
        registered = gallery.examiner_by_fingerprint(own.key().fingerprint)
        if registered is not None and examiner_key(registered.name) == examiner_key(name):
            return own
        person = examiner(name)
        known = gallery.examiner_by_fingerprint(person.key().fingerprint)
    if known is None:
        register(folder, name, roles)
    return person


def open_as(folder: Path, name: str, roles: Iterable[Role | str] = ALL_ROLES) -> Gallery:
    """The gallery opened by `name` (see `as_examiner`)."""
    return Gallery(folder, examiner=as_examiner(folder, name, roles))


class profile_env:
    """Run the command line (in this process) as `name`: their profile as the config folder, as
    when they run it under their own login. Registered on creation; reusable."""

    def __init__(self, folder: Path, name: str, roles: Iterable[Role | str] = ALL_ROLES) -> None:
        self.examiner = as_examiner(folder, name, roles)
        self._before: list[tuple[str, Any]] = []

    def __enter__(self) -> Examiner:
        self._before.append((os.environ["WORKSTATION_CONFIG_DIR"], identity.os_login))
        os.environ["WORKSTATION_CONFIG_DIR"] = str(self.examiner.profile)
        name = self.examiner.name
        identity.os_login = lambda: name
        return self.examiner

    def __exit__(self, *exc_info: object) -> None:
        os.environ["WORKSTATION_CONFIG_DIR"], identity.os_login = self._before.pop()


WORKSTATION = str(Path(sys.executable).with_name("workstation"))


def start_as(folder: Path, user: str, *argv: str) -> subprocess.Popen[str]:
    """One workstation as `user`: a CLI process of its own, with `user`'s own profile (their
    key), as on another PC."""
    env = {
        **os.environ,
        "WORKSTATION_CONFIG_DIR": str(profile_of(user)),
        "WORKSTATION_DATA_DIR": str(profile_of(user) / "data"),
    }
    return subprocess.Popen(
        [WORKSTATION, "--gallery", str(folder), "--user", user, *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def finish(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    """Wait for a `start_as` process: its exit code, output and errors."""
    out, err = process.communicate(timeout=900)
    return process.returncode, out, err


def run_as(folder: Path, user: str, *argv: str) -> tuple[int, str, str]:
    return finish(start_as(folder, user, *argv))
