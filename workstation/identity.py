"""Who is acting: the operating-system login, and the signing key in their own profile.

The examiner is the login the operating system says is running the program (POSIX: the name of
the process's real user id in the password database; Windows: the account name from the OS),
never the LOGNAME, USER or USERNAME variables, which anyone can set. Each examiner has one Ed25519
key pair in their profile (the config folder: ``keys/examiner.key``, readable by them alone, and
``keys/examiner.pub``), made on first use; an administrator registers the public key in a
gallery, and from then on every audit event the examiner writes there is signed with it.

What a gallery records as the examiner's name is the name registered for the key that signs
(workstation.gallery.examiners); the login (or ``--user``, kept as a test hook) must match it.
So a typed name can never change whose key signs, or whose name goes into the record.

The private key may be protected by a passphrase: the WORKSTATION_KEY_PASSPHRASE environment
variable (command line, scripts), or a function the caller gives (the app's dialog).
"""

from __future__ import annotations

import os
import stat
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from workstation.audit.signing import SigningKey
from workstation.errors import KeyFileError
from workstation.paths import config_dir
from workstation.permissions import make_private_dir

KEYS_DIR = "keys"
PRIVATE_KEY_FILE = "examiner.key"
PUBLIC_KEY_FILE = "examiner.pub"
WITNESS_DIR = "witness"
PASSPHRASE_ENV = "WORKSTATION_KEY_PASSPHRASE"
POSIX = os.name == "posix"


def os_login() -> str:
    """The operating system's name for the user running this process.

    POSIX: the password-database name of the real user id (LOGNAME and USER are ignored: any
    program may set them). Windows: the account name the OS reports for the process.
    """
    return system_login()


def system_login() -> str:
    """`os_login` itself (tests replace `os_login` with a fixed name; this stays the OS's)."""
    if POSIX:
        import pwd

        try:
            return pwd.getpwuid(os.getuid()).pw_name
        except KeyError:
            # A uid with no name (some containers): the number is still the OS's identity.
            return f"uid{os.getuid()}"
    if sys.platform == "win32":  # pragma: no cover - Windows only (mypy checks it there)
        import ctypes

        size = ctypes.c_ulong(257)
        buffer = ctypes.create_unicode_buffer(size.value)
        if not ctypes.windll.advapi32.GetUserNameW(buffer, ctypes.byref(size)):
            raise OSError("Windows did not give the account name of this process")
        return buffer.value
    raise OSError("this system is neither POSIX nor Windows: no account name to use")


PassphraseSource = Callable[[str], str | None]


@dataclass
class Examiner:
    """The person acting: the name they act under and the profile that holds their key.

    `name` is the OS login (`Examiner.current()`); tests give another name with the profile of
    that examiner (a folder of its own). The key is loaded once per object, on first use.
    """

    name: str
    profile: Path
    # Asked for the passphrase of a protected key (given the key file's path), when the
    # environment variable does not give it; None answers "no passphrase".
    passphrase: PassphraseSource | None = None
    _key: SigningKey | None = field(default=None, init=False, repr=False, compare=False)
    _lock: threading.Lock = field(
        default_factory=threading.Lock, init=False, repr=False, compare=False
    )

    @classmethod
    def current(
        cls, user: str | None = None, passphrase: PassphraseSource | None = None
    ) -> Examiner:
        """The examiner running this program: the OS login (or `user`, a test hook that must
        match the name registered for this profile's key) with the profile in the config
        folder."""
        return cls(user or os_login(), config_dir(), passphrase)

    @property
    def keys_dir(self) -> Path:
        return self.profile / KEYS_DIR

    @property
    def private_key_path(self) -> Path:
        return self.keys_dir / PRIVATE_KEY_FILE

    @property
    def public_key_path(self) -> Path:
        return self.keys_dir / PUBLIC_KEY_FILE

    @property
    def witness_dir(self) -> Path:
        return self.profile / WITNESS_DIR

    def has_key(self) -> bool:
        return self._key is not None or self.private_key_path.exists()

    def key(self, create: bool = True) -> SigningKey:
        """The examiner's signing key, loaded (or made, on first use, when `create`)."""
        with self._lock:
            if self._key is None:
                path = self.private_key_path
                if path.exists():
                    self._key = self._load(path)
                elif create:
                    self._key = self._create(path)
                else:
                    raise KeyFileError(
                        f"{path}: no examiner key in this profile yet (it is made on first use, "
                        "or with `workstation examiners key`)"
                    )
            return self._key

    def _create(self, path: Path) -> SigningKey:
        key = SigningKey.generate()
        passphrase = os.environ.get(PASSPHRASE_ENV) or None
        make_private_dir(path.parent)
        # Created 0600 in one step (O_EXCL: never over an existing key), whatever the umask.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it a moment ago: use theirs
            return self._load(path)
        except OSError as exc:
            raise KeyFileError(f"{path}: cannot create the examiner key ({exc})") from exc
        with os.fdopen(fd, "wb") as handle:
            handle.write(key.private_pem(passphrase))
            handle.flush()
            os.fsync(handle.fileno())
        public = self.public_key_path.with_suffix(".pub.part")
        public.write_text(key.public_text + "\n", encoding="ascii")
        public.replace(self.public_key_path)
        return key

    def _load(self, path: Path) -> SigningKey:
        try:
            info = path.stat()
            data = path.read_bytes()
        except OSError as exc:
            raise KeyFileError(f"{path}: cannot read the examiner key ({exc})") from exc
        if POSIX:
            if info.st_uid != os.getuid():
                raise KeyFileError(
                    f"{path}: this key file belongs to another user (uid {info.st_uid}); an "
                    "examiner signs only with their own key"
                )
            loose = stat.S_IMODE(info.st_mode) & 0o077
            if loose:
                raise KeyFileError(
                    f"{path}: the key file may be read by others (mode "
                    f"{stat.S_IMODE(info.st_mode):04o}); only you may read your key: "
                    f"run `chmod 600 {path}`"
                )
        passphrase = os.environ.get(PASSPHRASE_ENV) or None
        if passphrase is None and b"ENCRYPTED" in data and self.passphrase is not None:
            passphrase = self.passphrase(str(path))
        return SigningKey.from_pem(data, passphrase, str(path))

    def public_key_text(self) -> str:
        return self.key().public_text

    def fingerprint(self) -> str:
        return self.key().fingerprint
