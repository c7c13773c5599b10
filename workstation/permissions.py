"""Who may read the data workstation keeps on this PC: the examiner who owns it, or the owner and
one examiners' group that IT names.

A gallery holds photos and face embeddings of people who are mostly innocent, and the settings
and error log hold case numbers and probe paths. So everything workstation creates is private:

- owner only (the default): folders 0700, files 0600;
- owner and an examiners' group, when the environment variable WORKSTATION_GROUP names one:
  folders 2770 (the set-group-id bit makes files created inside belong to that group) with the
  group set on them, files 0660. An environment variable, not a setting: it is the agency's
  decision for the PC (set system-wide by IT), while the settings file belongs to the examiner.

Every file is covered, including those SQLite creates beside the database (-wal, -shm: SQLite
gives them the database file's mode) and those written later (photo copies, index files,
settings, the error log): `restrict_process` tightens the process's umask when the program
starts and whenever a gallery is opened, and folders and the database file are created with
their mode set explicitly. Exports (report PDF, evidence bundle) go where the examiner chooses
and are made 0600 whatever the policy (stricter if the examiner's umask is).

Folders made by older versions (0755) are reported, never changed behind the examiner's back
(a shared deployment may have set them on purpose): `workstation permissions --fix` restricts
them. On Windows none of this applies: the data lives in the user's profile, private to the
user by default; a shared gallery there needs NTFS permissions set by IT (docs/DEPLOYMENT.md).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from workstation.errors import WorkstationError

GROUP_ENV = "WORKSTATION_GROUP"
POSIX = os.name == "posix"
# The examiner's umask as the program found it (exports honour it when it is stricter).
_ORIGINAL_UMASK: int | None = None


@dataclass(frozen=True)
class AccessPolicy:
    """Owner only (group None), or owner and one examiners' group."""

    group: str | None = None
    gid: int | None = None

    @property
    def dir_mode(self) -> int:
        return 0o2770 if self.group else 0o700

    @property
    def file_mode(self) -> int:
        return 0o660 if self.group else 0o600

    @property
    def allowed_bits(self) -> int:
        """Permission bits a folder or file may have under this policy."""
        return 0o770 if self.group else 0o700

    def describe(self) -> str:
        if self.group:
            return f"owner and the examiners' group {self.group} (folders 2770, files 0660)"
        return "owner only (folders 0700, files 0600)"


def access_policy() -> AccessPolicy:
    """The policy in force: owner only, or owner and the group WORKSTATION_GROUP names.

    Raises:
        WorkstationError: WORKSTATION_GROUP names a group this PC does not have.
    """
    name = os.environ.get(GROUP_ENV, "").strip()
    if not name or not POSIX:
        return AccessPolicy()
    import grp

    try:
        entry = grp.getgrnam(name) if not name.isdigit() else grp.getgrgid(int(name))
    except KeyError:
        raise WorkstationError(
            f"{GROUP_ENV}={name}: there is no such group on this PC; ask IT to create the "
            "examiners' group or correct the variable"
        ) from None
    return AccessPolicy(entry.gr_name, entry.gr_gid)


def restrict_process(policy: AccessPolicy | None = None) -> AccessPolicy:
    """Make every file and folder this process creates from now on private (umask).

    Owner only: group and others get nothing. With a group: others get nothing, the group gets
    read and write. Idempotent; only ever tightens what others may do.
    """
    global _ORIGINAL_UMASK
    policy = policy or access_policy()
    if not POSIX:
        return policy
    current = os.umask(0o077)
    if _ORIGINAL_UMASK is None:
        _ORIGINAL_UMASK = current
    wanted = (current | 0o007) & ~0o070 if policy.group else current | 0o077
    os.umask(wanted)
    return policy


def make_private_dir(path: Path, policy: AccessPolicy | None = None) -> Path:
    """Create a folder (and missing parents) for the owner, or owner and group, only.

    A folder that already exists keeps its mode (see `exposure`): only folders created here
    are set.
    """
    policy = restrict_process(policy)
    path = Path(path)
    missing: list[Path] = []
    probe = path
    while not probe.exists():
        missing.append(probe)
        if probe.parent == probe:
            break
        probe = probe.parent
    path.mkdir(parents=True, exist_ok=True)
    if POSIX:
        for created in reversed(missing):
            _set_dir(created, policy)
    return path


def _set_dir(path: Path, policy: AccessPolicy) -> None:
    if policy.gid is not None:
        os.chown(path, -1, policy.gid)
    os.chmod(path, policy.dir_mode)


def create_private_file(path: Path, policy: AccessPolicy | None = None) -> None:
    """Create an empty file with the policy's mode, unless it exists (then it is left alone).

    The database file is made this way before SQLite opens it, so the -wal and -shm files SQLite
    creates beside it get the same mode.
    """
    policy = restrict_process(policy)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, policy.file_mode)
    except FileExistsError:
        return
    try:
        if POSIX:
            os.fchmod(descriptor, policy.file_mode)  # the umask may have taken group bits
    finally:
        os.close(descriptor)


def make_export_private(path: Path) -> None:
    """An exported file (report, bundle) readable and writable by its owner only: 0600, or
    stricter if the examiner's own umask is."""
    if not POSIX:
        return
    original = _ORIGINAL_UMASK if _ORIGINAL_UMASK is not None else 0o022
    os.chmod(path, 0o600 & ~original)


def exposure(folder: Path, policy: AccessPolicy | None = None) -> str | None:
    """Why other users of this PC may read `folder` (None when they cannot, or it is absent).

    Only the folder itself is looked at: whoever cannot enter it reaches nothing inside.
    """
    if not POSIX:
        return None
    policy = policy or access_policy()
    try:
        status = os.stat(folder)
    except OSError:
        return None
    mode = stat.S_IMODE(status.st_mode)
    if mode & 0o007:
        return f"{folder} can be read by every user of this PC (mode {mode:04o})"
    if mode & 0o070:
        if policy.gid is None:
            return (
                f"{folder} can be read by the members of its group (mode {mode:04o}) and "
                f"{GROUP_ENV} names no examiners' group"
            )
        if status.st_gid != policy.gid:
            return (
                f"{folder} can be read by the members of group {_group_name(status.st_gid)} "
                f"(mode {mode:04o}), not the examiners' group {policy.group}"
            )
    return None


def _group_name(gid: int) -> str:
    import grp

    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def fix_tree(folder: Path, policy: AccessPolicy | None = None) -> int:
    """Give `folder` and everything inside it the policy's modes (and group); returns how many
    folders and files were changed. Symbolic links are not followed."""
    policy = restrict_process(policy)
    if not POSIX:
        return 0
    changed = 0
    for root, dirs, files in os.walk(folder):
        for name in [".", *dirs, *files]:
            path = os.path.join(root, name) if name != "." else root
            status = os.lstat(path)
            if stat.S_ISLNK(status.st_mode):
                continue
            is_dir = stat.S_ISDIR(status.st_mode)
            if is_dir and name != ".":
                continue  # each folder is handled as "." of its own walk step
            wanted = policy.dir_mode if is_dir else policy.file_mode
            if policy.gid is not None and status.st_gid != policy.gid:
                os.chown(path, -1, policy.gid, follow_symlinks=False)
                changed += 1
            if stat.S_IMODE(status.st_mode) != wanted:
                os.chmod(path, wanted)
                changed += 1
    return changed


def exposure_warnings(gallery_dir: Path) -> list[str]:
    """What other users of this PC may read: the gallery, data and config folders, each named
    with the command that restricts it (folders made by older versions were 0755)."""
    from workstation.paths import config_dir, data_dir

    policy = access_policy()
    problems = []
    for folder in dict.fromkeys([Path(gallery_dir), data_dir(), config_dir()]):
        problem = exposure(folder, policy)
        if problem:
            problems.append(
                f"{problem}; it holds biometric data or case details: run `workstation "
                "permissions --fix` to restrict it"
            )
    return problems
