"""The gallery's audit trail as read and checked: part of `Gallery`.

The chain of signed events and their row hashes, its verification, the witnesses of its head,
and the examiners it registers. See `subject_reads` for why `Gallery`'s reads are split by
module. The one write here is a witness line (a head seen, appended to the witness files).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workstation.audit.actions import AuditAction
from workstation.audit.log import AuditEvent
from workstation.audit.roles import ALL_ROLES, Role
from workstation.audit.rows import COVERED_LATER, COVERED_TABLES, RowEntry, row_sha256, row_word
from workstation.audit.verify import ChainReport, check_rows, verify_events
from workstation.audit.witness import (
    GalleryHead,
    WitnessLine,
    append_entry,
    check_head,
    check_witnesses,
    read_witnesses,
    signed_entry,
)
from workstation.errors import GalleryError, IdentityError, WorkstationError
from workstation.gallery import audit_store
from workstation.gallery.database import Database, dict_rows
from workstation.gallery.examiners import RegisteredExaminer
from workstation.gallery.opening import AGENCY, WITNESS_FOLDER_SETTING
from workstation.permissions import make_private_dir

if TYPE_CHECKING:
    from workstation.gallery.change import GalleryChange
    from workstation.identity import Examiner

log = logging.getLogger(__name__)


def _existing_folder(folder: Path) -> None:
    """An agency witness folder must be there already (a mounted share): never made locally."""
    if not Path(folder).is_dir():
        raise FileNotFoundError(f"{folder} is not reachable (not a folder)")


class AuditTrail:
    """The audit chain, its witnesses and its examiners (a part of `Gallery`)."""

    if TYPE_CHECKING:
        _conn: Database
        folder: Path
        examiner: Examiner
        kind: str
        read_only: bool
        witness_problems: list[str]
        _genesis_cache: AuditEvent | None
        _gallery_id: str | None

        @property
        def user(self) -> str: ...

        def read_snapshot(self) -> AbstractContextManager[None]: ...

        def meta(self, key: str) -> str | None: ...

        def open_change(self, save_index: bool = True) -> GalleryChange: ...

    def _covered_tables(self) -> list[str]:
        """The tables whose rows the chain covers in this gallery: all, but those covered later
        (rows.COVERED_LATER) in a gallery upgraded since and not yet opened by an examiner,
        whose rows there no event has hashed yet. (The flag is a covered row itself: removed
        outside the program, `audit verify` names it.)"""
        pending = {
            table
            for key, tables in COVERED_LATER.items()
            if self.meta(key) is None
            for table in tables
        }
        return [table for table in COVERED_TABLES if table not in pending]

    def audit_events(
        self, case_id: str | None = None, limit: int | None = None
    ) -> list[AuditEvent]:
        """The audit events (of one case, or all), oldest first."""
        return audit_store.list_events(self._conn, case_id=case_id, limit=limit)

    def audit_event(self, seq: int) -> AuditEvent | None:
        return audit_store.event_at(self._conn, seq)

    def audit_head(self) -> tuple[int, str]:
        """(seq, hash) of the last event (0 and 64 zeros for an empty log)."""
        return audit_store.chain_head(self._conn)

    def event_rows(self, seq: int) -> list[RowEntry]:
        """The row hashes an event carries: (table, row id, SHA-256 or None for removed)."""
        return audit_store.event_row_entries(self._conn, seq)

    def verify_audit(
        self, rows: bool = True, witnesses: bool = True, head: tuple[int, str] | None = None
    ) -> ChainReport:
        """Walk the whole chain (links, hashes, signatures against the keys the chain
        registers, roles, row digests); then, when `rows`, re-hash every current row against
        the last event that wrote it; when `witnesses`, hold the chain to every witness of its
        head it can read (workstation.audit.witness); and to `head` (SEQ, HASH) when given (a
        head printed in a report). See workstation.audit.verify."""
        # Witnesses are read before the chain: a head is witnessed only after its act commits,
        # so every head read here is in the chain read next. Read after the chain, an act
        # committing in between would look like a rollback (seen with reads recorded by the app
        # while a verify ran).
        witness_lines: tuple[list[WitnessLine], list[str]] = (
            read_witnesses(self.witness_folders()) if witnesses else ([], [])
        )
        with self.read_snapshot():
            report = verify_events(
                audit_store.iter_events(self._conn), audit_store.iter_row_entries(self._conn)
            )
            if report.intact and rows and report.genesis_seq is not None:
                checked, problem = check_rows(
                    audit_store.DatabaseRowSource(self._conn),
                    tables=self._covered_tables(),
                    skip=audit_store.uncovered,
                )
                report.rows_checked = checked
                if problem is not None:
                    report.intact = False
                    report.problem = problem
            if report.intact and head is not None:
                problem = check_head(head[0], head[1], report.head_seq, self._hash_at)
                if problem is not None:
                    report.intact = False
                    report.problem = problem
            if report.intact and witnesses and report.genesis_seq is not None:
                self._check_witnesses(report, *witness_lines)
            if report.intact and witnesses and self.kind == AGENCY:
                # The agency database's own witness of every event (gallery.agency_roles): read
                # in the same snapshot, as it is written in the same transaction as its event.
                from workstation.gallery.agency_roles import witness_problem

                found = witness_problem(self._conn, report.head_seq)
                if found is not None:
                    report.intact = False
                    report.first_bad_seq, report.problem = found
        return report

    def row_problems(self, table: str, row_ids: Iterable[Any]) -> dict[str, str]:
        """{row id: what is wrong, in words} for those of these rows that do not match the hash
        the last event writing them recorded (reports and bundles leave such rows out)."""
        ids = [str(row_id) for row_id in row_ids]
        latest = audit_store.DatabaseRowSource(self._conn).latest_row_entries(table, ids)
        rows = audit_store.rows_by_id(self._conn, table, ids)
        problems: dict[str, str] = {}
        for row_id in ids:
            word, recorded, row = row_word(table, row_id), latest.get(row_id), rows.get(row_id)
            if recorded is None:
                problems[row_id] = f"{word} was not written by any audited act"
            elif row is None:
                problems[row_id] = f"{word} is missing (event {recorded[0]} wrote it)"
            elif recorded[1] is None:
                problems[row_id] = f"{word} is present, but event {recorded[0]} removed it"
            elif row_sha256(table, row) != recorded[1]:
                problems[row_id] = (
                    f"{word} differs from what event {recorded[0]} recorded: the row was edited "
                    "outside the program"
                )
        return problems

    def _hash_at(self, seq: int) -> str | None:
        row = self._conn.execute("SELECT hash FROM audit WHERE seq = ?", (seq,)).fetchone()
        return None if row is None else str(row[0])

    def _check_witnesses(
        self, report: ChainReport, lines: list[WitnessLine], unreadable: list[str]
    ) -> None:
        assert report.genesis_hash is not None and report.first_administrator_key is not None
        head = GalleryHead(
            gallery_id=str(report.gallery_id),
            folder=str(self.folder.resolve()),
            seq=report.head_seq,
            hash=report.head_hash,
            genesis_hash=report.genesis_hash,
            first_administrator_key=report.first_administrator_key,
        )
        check = check_witnesses(head, self._hash_at, lines)
        report.witness_entries, report.witness_files = check.entries, check.files
        report.witnessed_elsewhere = check.later_elsewhere
        report.witness_unreadable = unreadable
        if check.problem is not None:
            report.intact = False
            report.problem = check.problem

    def witness_folders(self) -> list[Path]:
        """Where the head is witnessed: the examiner's profile and, when the gallery has one,
        the agency witness folder."""
        folders = [self.examiner.witness_dir]
        agency = self.gallery_setting(WITNESS_FOLDER_SETTING)
        if agency:
            folders.append(Path(agency))
        return folders

    def witnessed_head(self) -> GalleryHead | None:
        """The gallery's id, folder and head as a witness records them (None before genesis)."""
        genesis = self._genesis_cache or self.genesis_event()
        if genesis is None or genesis.key is None:
            return None
        self._genesis_cache = genesis
        seq, digest = self.audit_head()
        return GalleryHead(
            gallery_id=str(genesis.details.get("gallery_id")),
            folder=str(self.folder.resolve()),
            seq=seq,
            hash=digest,
            genesis_hash=genesis.hash,
            first_administrator_key=genesis.key,
        )

    def witness_head(self) -> None:
        """Append the head, signed, to every witness (after each committed act). A witness
        that cannot be written is noted in `witness_problems`; the act stays committed."""
        head = self.witnessed_head()
        if head is None:
            return
        try:
            entry = signed_entry(head, self.user, self.examiner.key())
        except WorkstationError as exc:
            self.witness_problems.append(f"the head was not witnessed: {exc}")
            return
        profile = self.examiner.witness_dir
        for folder in self.witness_folders():
            make_dir = make_private_dir if folder == profile else _existing_folder
            try:
                append_entry(folder, entry, make_dir)
            except OSError as exc:
                self.witness_problems.append(
                    f"the gallery's head (event {head.seq}) was not written to the witness "
                    f"folder {folder} ({exc}); `audit verify` cannot hold the chain to it there"
                )

    def genesis_event(self) -> AuditEvent | None:
        """The chain's genesis event (the gallery's id and first administrator), if any."""
        events = audit_store.list_events(self._conn, actions=[AuditAction.GENESIS.value], limit=1)
        return events[0] if events else None

    @property
    def gallery_id(self) -> str | None:
        """The gallery's random id, from its genesis event (None before it has one)."""
        if self._gallery_id is None:
            genesis = self.genesis_event()
            if genesis is not None:
                self._gallery_id = str(genesis.details.get("gallery_id"))
        return self._gallery_id

    def examiners(self) -> list[RegisteredExaminer]:
        """Every registered examiner (revoked ones too), in order of registration."""
        if not audit_store.has_accountability(self._conn):
            return []
        rows = dict_rows(self._conn.execute("SELECT * FROM examiners ORDER BY registered_at"))
        return [RegisteredExaminer.from_row(row) for row in rows]

    def examiner_by_fingerprint(self, fingerprint: str) -> RegisteredExaminer | None:
        if not audit_store.has_accountability(self._conn):
            return None
        sql = "SELECT * FROM examiners WHERE fingerprint = ?"
        rows = dict_rows(self._conn.execute(sql, (fingerprint,)))
        return RegisteredExaminer.from_row(rows[0]) if rows else None

    def gallery_setting(self, key: str) -> str | None:
        """A setting of the gallery itself (e.g. the agency witness folder), or None."""
        if not audit_store.has_accountability(self._conn):
            return None
        row = self._conn.execute(
            "SELECT value FROM gallery_settings WHERE key = ?", (key,)
        ).fetchone()
        return None if row is None else str(row[0])

    def _roles_writing_meta(self) -> frozenset[Role]:
        """Who may write `meta` here: anyone on a PC; on an agency's database, the roles its
        grants let add rows to it."""
        if self.kind != AGENCY:
            return ALL_ROLES
        from workstation.gallery.agency_roles import roles_inserting

        return roles_inserting("meta")

    def _cover_later_tables(self) -> None:
        """An upgraded gallery's rows in the tables the chain came to cover later (watches and
        their hits) are hashed as found, once, by the first registered examiner to open it, in
        an act of their own (rows.COVERED_LATER): from then on `audit verify` holds them to
        those hashes, and the event says who vouched for them and when."""
        if all(self.meta(key) is not None for key in COVERED_LATER):
            return
        if self.genesis_event() is None:
            return  # an older gallery not yet adopted: its adoption hashes every row
        try:
            change = self.open_change(save_index=False)
        except (IdentityError, GalleryError) as exc:
            # Someone who may not act here (not registered, revoked; the gallery moved): the
            # gallery still opens for what they may do, and the next examiner does this.
            log.info("%s: rows to hash left for a registered examiner (%s)", self.folder, exc)
            return
        try:
            # Checked again under the write lock: another process may have done it meanwhile.
            missing = [key for key in COVERED_LATER if self.meta(key) is None]
            if not missing or not change.acting.roles & self._roles_writing_meta():
                change.rollback()
                return
            counts = change.cover_later_tables(missing)
            change.record(AuditAction.ROWS_ADOPTED, {"tables": counts, "covered": missing})
            change.commit()
        except BaseException:
            change.rollback()
            raise
