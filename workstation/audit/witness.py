"""Witnesses: copies of the chain's head kept outside the gallery (storage-neutral, files only).

After every act that changes a case or the gallery, the examiner's program appends the new head
(the gallery's id and folder, the event's sequence number and hash, the time), signed with the
examiner's key, to a witness file in the examiner's own profile (one file per gallery id) and,
when the gallery has an agency witness folder (a network share or write-once store), to the file
of the same name there. Each entry also carries the genesis event's hash and the first
administrator's key fingerprint, so the first entry of a file pins which history the gallery id
belongs to.

`audit verify` then reads every witness it can and fails, naming the witness, on:

- a **rollback**: a witness saw, at this folder, an event the chain no longer has (an earlier
  copy of the gallery folder was put back); a copy verified elsewhere (a backup) is not a
  rollback, but `audit verify` says how far behind the witnessed gallery it is;
- a **fork**: a witness saw another hash at a sequence number than the chain has there (the
  history was rewritten, whatever keys re-signed it);
- a **swapped gallery**: a witness saw another gallery id at this folder, or this gallery id with
  another genesis or first administrator (a whole history forged under another profile).

What a witness cannot do: an attacker who can write every witness (the examiner's profile and
the agency folder) as well as the gallery can rewrite all of them; a witness on the same disk as
the gallery protects against a rollback by someone who cannot write the examiner's profile only
(docs/ACCOUNTABILITY.md).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from workstation.audit.log import canonical_json, utc_now
from workstation.audit.signing import (
    SigningKey,
    decode_public_key,
    fingerprint,
    verify_signature,
)
from workstation.errors import KeyFileError

WITNESS_SUFFIX = ".witness.jsonl"
# What a witness entry's signature covers: this prefix and the entry's canonical JSON (the prefix
# keeps it from ever being taken for an event signature).
WITNESS_SIGNATURE_CONTEXT = b"workstation witness v1\x00"


@dataclass(frozen=True)
class WitnessEntry:
    """One head a witness saw."""

    gallery_id: str
    folder: str  # the gallery folder, resolved
    seq: int
    hash: str
    time: str
    examiner: str
    public_key: str  # the examiner's public key (text form): the entry is checked with it
    genesis_hash: str
    first_administrator_key: str  # fingerprint, pinned by the first entry of a file
    signature: str = ""

    def body(self) -> dict[str, Any]:
        body = asdict(self)
        body.pop("signature")
        return body

    def signed_message(self) -> bytes:
        return WITNESS_SIGNATURE_CONTEXT + canonical_json(self.body()).encode("utf-8")

    def signature_ok(self) -> bool:
        try:
            public = decode_public_key(self.public_key)
        except KeyFileError:
            return False
        return verify_signature(public, self.signed_message(), self.signature)

    @property
    def key_fingerprint(self) -> str:
        try:
            return fingerprint(decode_public_key(self.public_key))
        except KeyFileError:
            return ""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WitnessEntry:
        return cls(
            gallery_id=str(data["gallery_id"]),
            folder=str(data["folder"]),
            seq=int(data["seq"]),
            hash=str(data["hash"]),
            time=str(data["time"]),
            examiner=str(data["examiner"]),
            public_key=str(data["public_key"]),
            genesis_hash=str(data["genesis_hash"]),
            first_administrator_key=str(data["first_administrator_key"]),
            signature=str(data.get("signature") or ""),
        )


@dataclass(frozen=True)
class GalleryHead:
    """What is witnessed of a gallery: its identity and its head."""

    gallery_id: str
    folder: str
    seq: int
    hash: str
    genesis_hash: str
    first_administrator_key: str


def signed_entry(head: GalleryHead, examiner: str, key: SigningKey) -> WitnessEntry:
    entry = WitnessEntry(
        gallery_id=head.gallery_id,
        folder=head.folder,
        seq=head.seq,
        hash=head.hash,
        time=utc_now(),
        examiner=examiner,
        public_key=key.public_text,
        genesis_hash=head.genesis_hash,
        first_administrator_key=head.first_administrator_key,
    )
    return WitnessEntry(**{**asdict(entry), "signature": key.sign(entry.signed_message())})


def witness_file(folder: Path, gallery_id: str) -> Path:
    return Path(folder) / f"{gallery_id}{WITNESS_SUFFIX}"


def append_entry(folder: Path, entry: WitnessEntry, make_dir: Callable[[Path], object]) -> Path:
    """Append one entry (one line) to the gallery's witness file in `folder`, flushed to disk.

    Opened for appending only: nothing already written is ever rewritten by the program.
    """
    make_dir(Path(folder))
    path = witness_file(folder, entry.gallery_id)
    line = (canonical_json({**entry.body(), "signature": entry.signature}) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)
    return path


@dataclass(frozen=True)
class WitnessLine:
    """An entry as read from a file (`entry` None: the line is not a readable entry)."""

    path: Path
    line: int
    entry: WitnessEntry | None

    @property
    def where(self) -> str:
        return f"witness {self.path} line {self.line}"


def read_witnesses(folders: Iterable[Path]) -> tuple[list[WitnessLine], list[str]]:
    """Every entry of every witness file in `folders` (missing folders are skipped), and the
    folders or files that could not be read, in words."""
    lines: list[WitnessLine] = []
    unreadable: list[str] = []
    for folder in folders:
        folder = Path(folder)
        if not folder.is_dir():
            continue
        try:
            files = sorted(folder.glob(f"*{WITNESS_SUFFIX}"))
        except OSError as exc:
            unreadable.append(f"{folder}: {exc}")
            continue
        for path in files:
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                unreadable.append(f"{path}: {exc}")
                continue
            for number, raw in enumerate(text.splitlines(), start=1):
                if not raw.strip():
                    continue
                try:
                    entry: WitnessEntry | None = WitnessEntry.from_dict(json.loads(raw))
                except (ValueError, KeyError, TypeError):
                    entry = None
                lines.append(WitnessLine(path, number, entry))
    return lines, unreadable


@dataclass
class WitnessCheck:
    """What `check_witnesses` found: entries checked, and the first problem (None: agrees)."""

    entries: int = 0
    files: int = 0
    latest_seq: int = 0  # the highest sequence number a witness saw
    # The highest sequence number witnessed for this gallery id at another folder, beyond this
    # chain's end (0: none): this copy is behind the gallery it was copied from.
    later_elsewhere: int = 0
    problem: str | None = None


def check_witnesses(
    head: GalleryHead,
    hash_at: Callable[[int], str | None],
    lines: Iterable[WitnessLine],
) -> WitnessCheck:
    """Hold the chain (its head, and `hash_at(seq)`: the chain's hash at a sequence number) to
    every witness entry that names this gallery id or this folder."""
    check = WitnessCheck()
    files: set[Path] = set()
    pinned: dict[Path, WitnessEntry] = {}
    for line in lines:
        entry = line.entry
        if entry is None:
            check.problem = f"{line.where} is not a witness entry (the file was altered)"
            return check
        if entry.gallery_id != head.gallery_id and entry.folder != head.folder:
            continue  # another gallery's witness
        files.add(line.path)
        check.entries += 1
        if not entry.signature_ok():
            check.problem = (
                f"{line.where}: its signature does not match its content (the entry was altered)"
            )
            return check
        if entry.gallery_id != head.gallery_id:
            check.problem = (
                f"{line.where}: {entry.examiner} saw another gallery (id {entry.gallery_id}) at "
                f"this folder, up to event {entry.seq} on {entry.time}; this gallery (id "
                f"{head.gallery_id}) was put in its place: its whole history is not the one "
                "that was witnessed"
            )
            return check
        first = pinned.setdefault(line.path, entry)
        for seen in (first, entry):
            if (
                seen.genesis_hash != head.genesis_hash
                or seen.first_administrator_key != head.first_administrator_key
            ):
                check.problem = (
                    f"{line.where}: {entry.examiner} saw this gallery id with another genesis "
                    "event or first administrator key; this history was made again under "
                    "another key (a forged history)"
                )
                return check
        check.latest_seq = max(check.latest_seq, entry.seq)
        if entry.seq > head.seq and entry.folder != head.folder:
            # A later head of this gallery seen at another folder: this is a copy (a backup
            # verified where it lies) and the gallery moved on there. Not a rollback here.
            check.later_elsewhere = max(check.later_elsewhere, entry.seq)
            continue
        if entry.seq > head.seq:
            check.problem = (
                f"{line.where}: {entry.examiner} saw event {entry.seq} on {entry.time}, but the "
                f"chain ends at event {head.seq}: the gallery was rolled back to an earlier "
                "copy (later events were erased)"
            )
            return check
        if hash_at(entry.seq) != entry.hash:
            check.problem = (
                f"{line.where}: {entry.examiner} saw event {entry.seq} with hash "
                f"{entry.hash[:16]}… on {entry.time}; the chain has another event there: the "
                "history from that event on was rewritten (a fork)"
            )
            return check
    check.files = len(files)
    return check


def parse_head(text: str) -> tuple[int, str]:
    """A head as given on the command line or printed in a report: "SEQ:HASH"."""
    seq, _, digest = (text or "").strip().partition(":")
    digest = digest.strip().lower()
    if (
        not seq.strip().isdigit()
        or len(digest) != 64
        or any(c not in "0123456789abcdef" for c in digest)
    ):
        raise ValueError(
            f"{text!r} is not a head: give it as SEQ:HASH (the event number, a colon and its "
            "64-digit hash, as a report prints it)"
        )
    return int(seq), digest


def check_head(
    seq: int, digest: str, chain_head: int, hash_at: Callable[[int], str | None]
) -> str | None:
    """A head taken from a report, held to the chain (None: the chain has it)."""
    if seq > chain_head:
        return (
            f"the given head is event {seq}, but the chain ends at event {chain_head}: the "
            "gallery was rolled back to an earlier copy"
        )
    if hash_at(seq) != digest:
        return (
            f"the chain's event {seq} does not have the given hash {digest[:16]}…: the history "
            "was rewritten since the report was made (a fork)"
        )
    return None
