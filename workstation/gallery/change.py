"""The gallery's one unit of work: every write to the gallery goes through a `GalleryChange`.

A change is one database transaction. Through it the caller adds or removes subjects, photos
and faces, stores decisions, cases and calibrations, and appends audit events; `commit` then

1. bumps the faces generation once, if any face was added, removed, moved or re-embedded (the
   vector index and the calibration read it to know they describe the current gallery),
2. commits the transaction (the act and its audit event together, or neither),
3. and only after the commit applies the added and removed faces to the vector index and deletes
   the stored photos no face uses any more.

`rollback` (or any error inside `Gallery.change()`) undoes the transaction and leaves the index
and the files as they were. Enrolment writes many photos in one change, each in its own
`step()` (a savepoint) with its own audit event, so one bad photo is undone alone.

Open a change with `Gallery.change(action, details, ...)` (a context manager that also appends
the act's audit event) or `Gallery.open_change()` (committed by the caller).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np

from workstation.audit.actions import AuditAction
from workstation.audit.log import AuditEvent, audited_action, new_event, utc_now
from workstation.audit.roles import Role, refusal
from workstation.audit.rows import COVERED_LATER, RowEntry, row_sha256, rows_digest
from workstation.domain import (
    ModelId,
    examiner_key,
)
from workstation.errors import CaseStatusError, GalleryError, NotPermittedError
from workstation.gallery import audit_store
from workstation.gallery.case_rules import case_act_refusal
from workstation.gallery.case_writes import CaseWrites
from workstation.gallery.database import Database
from workstation.gallery.photo_copies import clear_busy, mark_busy, unlink_durably
from workstation.gallery.subject_writes import SubjectWrites

if TYPE_CHECKING:
    from workstation.gallery.examiners import RegisteredExaminer
    from workstation.gallery.store import Gallery


class GalleryChange(SubjectWrites, CaseWrites):
    """One transaction of writes, with its audit events; see the module docstring. Its writes
    of subjects, photos and faces are in `subject_writes`, of cases and what is done in them
    in `case_writes`; the transaction, the audit events and the row hashes are here."""

    def __init__(
        self,
        gallery: Gallery,
        conn: Database,
        save_index: bool,
        acting: RegisteredExaminer,
    ) -> None:
        self.gallery = gallery
        self._conn = conn
        self._save_index = save_index
        # The registered examiner acting (checked when the change opened): the name every row
        # and event records, and the roles every act is held to.
        self.acting = acting
        # Rows written since the last event, {(table, row id): removed?}: the next event
        # carries their hashes (a removed row is listed with no hash).
        self._rows: dict[tuple[str, str], bool] = {}
        # Audit details of the act `Gallery.change()` records at the end (the caller may add).
        self.details: dict[str, Any] = {}
        self.events: list[AuditEvent] = []
        self.open = True
        self.generation_before = gallery.generation
        self._added: list[tuple[np.ndarray, np.ndarray]] = []
        self._removed: list[int] = []
        self._files: list[str] = []  # stored photos to delete after the commit
        self._faces_changed = False
        self._rebuild_index = False
        # Personal data removed (faces, subjects, embeddings replaced): after the commit the WAL
        # is checkpointed and truncated, so no old copy of those pages stays in the -wal file.
        self._scrub = False
        self._wrote = False  # any row written: the change must then record an audit event
        self._steps = 0

    # ------------------------------------------------------------------ end
    def commit(self) -> int:
        """Bump the generation (if faces changed), commit, then update the index and files.

        Returns the gallery's generation after the change.
        """
        self._require_open()
        if self._wrote and not self.events:
            self.rollback()
            raise RuntimeError(
                "a gallery change that writes must record its audit event (GalleryChange.record)"
            )
        if self._rows:
            self.rollback()
            raise RuntimeError(
                "rows were written after the change's last audit event; record the act after "
                "writing its rows"
            )
        generation = self.generation_before
        try:
            if self._faces_changed:
                generation = self.gallery._bump_generation()
                if self._added or self._removed:
                    self.gallery._before_commit(self._added, self._removed)
            # A crash between the commit and the unlinks leaves copies no row names: the marker
            # tells the next opening to look for them.
            busy = mark_busy(self.gallery.folder) if self._files else None
            self._conn.commit()
        except BaseException:
            self.rollback()
            raise
        self.open = False
        self.gallery._change = None
        # The new head, signed, to the witnesses outside the gallery (never fails the act).
        self.gallery.witness_head()
        # Unlinked and the folder fsynced (overwriting first would not erase on an SSD: see
        # gallery.photo_copies); no row names them any more.
        unlink_durably(self.gallery.folder / relative for relative in self._files)
        clear_busy(busy)
        if self._faces_changed:
            self.gallery._sync_index(
                self.generation_before,
                generation,
                self._added,
                self._removed,
                rebuild=self._rebuild_index,
                save=self._save_index,
            )
        if self._scrub:
            self.gallery.checkpoint_wal()
        return generation

    def rollback(self) -> None:
        """Undo everything written through this change; the index and files are untouched."""
        if self.open:
            self._conn.rollback()
        self.open = False
        self.gallery._change = None

    @contextmanager
    def step(self, what: str = "the change") -> Iterator[None]:
        """A part of the change that is undone alone when it fails (a savepoint): its rows,
        audit events and pending index updates go; the rest of the change stays.

        A database refusal inside is raised as GalleryError naming `what` and the database's
        reason.
        """
        self._require_open()
        self._steps += 1
        name = f"step_{self._steps}"
        mark = (len(self._added), len(self._removed), len(self._files), len(self.events))
        changed, wrote, rows = self._faces_changed, self._wrote, dict(self._rows)
        self._conn.savepoint(name)
        try:
            yield
        except BaseException as exc:
            self._conn.rollback_to(name)
            del self._added[mark[0] :], self._removed[mark[1] :], self._files[mark[2] :]
            del self.events[mark[3] :]
            self._faces_changed, self._wrote, self._rows = changed, wrote, rows
            if isinstance(exc, self._conn.Error):
                raise GalleryError(f"the gallery database refused {what} ({exc})") from exc
            raise
        self._conn.release(name)

    def _require_open(self) -> None:
        if not self.open:
            raise RuntimeError("this gallery change has already been committed or rolled back")

    def _writing(self) -> Database:
        """The connection, for a write (marks the change as one that must be audited)."""
        self._require_open()
        self._wrote = True
        return self._conn

    def _touch(self, table: str, row_ids: Iterable[Any], removed: bool = False) -> None:
        """Note rows written (or removed): the next event carries their hashes."""
        for row_id in row_ids:
            self._rows[(table, str(row_id))] = removed

    def touch_every_row(self, tables: Iterable[str] | None = None) -> int:
        """Note every covered row (of `tables`, default all) as written: an adopted gallery's
        baseline; returns how many."""
        before = len(self._rows)
        for table in audit_store.ROW_KEYS if tables is None else tables:
            key = audit_store.ROW_KEYS[table]
            ids = [str(r[0]) for r in self._conn.execute(f'SELECT "{key}" FROM {table}')]
            self._touch(table, (i for i in ids if not audit_store.uncovered(table, i)))
        return len(self._rows) - before

    def cover_later_tables(self, keys: Iterable[str]) -> dict[str, int]:
        """Hash, as found, the rows of the tables the chain came to cover later (`keys` of
        rows.COVERED_LATER) and mark the gallery as covering them; rows hashed per table."""
        counts: dict[str, int] = {}
        for key in keys:
            for table in COVERED_LATER[key]:
                counts[table] = self.touch_every_row([table])
            self.gallery._set_meta(key, utc_now())
            self._touch("meta", [key])
        self._wrote = True
        return counts

    def _row_entries(self) -> list[RowEntry]:
        """The hashes of the rows written since the last event, read back as stored."""
        by_table: dict[str, list[str]] = {}
        entries: list[RowEntry] = []
        for (table, row_id), removed in self._rows.items():
            if removed:
                entries.append((table, row_id, None))
            else:
                by_table.setdefault(table, []).append(row_id)
        for table, ids in by_table.items():
            found = audit_store.rows_by_id(self._conn, table, ids)
            for row_id in ids:
                row = found.get(row_id)
                # Written and removed within the act: listed as removed.
                entries.append((table, row_id, None if row is None else row_sha256(table, row)))
        return entries

    # ------------------------------------------------------------------ audit
    def record(
        self,
        action: AuditAction,
        details: dict[str, Any],
        case_id: str | None = None,
        purpose: str | None = None,
    ) -> AuditEvent:
        """Append an audit event to this change (it commits with the change's rows).

        The examiner's roles must allow the act (NotPermittedError naming the examiner, the
        role needed and the act); the event carries the hashes of the rows written since the
        previous event and is signed with the examiner's key.
        """
        self._require_open()
        action = AuditAction(audited_action(action))
        problem = refusal(self.acting.name, self.acting.roles, action, details)
        if problem is not None:
            raise NotPermittedError(problem)
        if case_id is not None:
            # Every act on a case passes here: a closed or archived case refuses what would
            # change it, whichever surface or function asked (see workstation.gallery.cases).
            case_problem = case_act_refusal(case_id, self._case_status(case_id), action)
            if case_problem is not None:
                raise CaseStatusError(case_problem)
        entries = self._row_entries()
        event = new_event(
            audit_store.chain_head(self._conn),
            user=self.acting.name,
            action=action,
            details=details,
            case_id=case_id,
            purpose=purpose,
            signer=self.gallery.examiner.key(),
            rows=rows_digest(entries),
        )
        audit_store.insert_event(self._conn, event, entries)
        self._rows.clear()
        self.events.append(event)
        return event

    # ------------------------------------------------------------------ model
    def bind_model(self, model: ModelId) -> None:
        """Bind an empty gallery to a model; refuse another model (ModelMismatchError)."""
        self.gallery.check_model(model)
        if self.gallery.model_id is None:
            self._set_model(model)

    def set_model(self, model: ModelId) -> None:
        """Bind the gallery to another model (re-embedding replaces every embedding with it)."""
        self._set_model(model)
        self._faces_changed = True
        self._rebuild_index = True

    def _set_model(self, model: ModelId) -> None:
        self._writing()
        self.gallery._set_meta("model_id", str(model))
        self.gallery._set_meta("model_name", model.name)
        self.gallery._set_meta("model_dim", str(model.dim))
        self._touch("meta", ("model_id", "model_name", "model_dim"))

    # ------------------------------------------------------------------ examiners, settings
    def add_examiner(
        self, fingerprint: str, name: str, public_key: str, roles: frozenset[Role]
    ) -> None:
        """Register an examiner's key (its event must carry the same key: see examiners.py)."""
        self._writing().execute(
            "INSERT INTO examiners (fingerprint, name, name_key, public_key, roles, "
            "registered_at, registered_by) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                fingerprint,
                name,
                examiner_key(name),
                public_key,
                json.dumps(sorted(r.value for r in roles)),
                utc_now(),
                self.acting.name,
            ),
        )
        self._touch("examiners", [fingerprint])

    def revoke_examiner(self, fingerprint: str, reason: str) -> None:
        self._writing().execute(
            "UPDATE examiners SET revoked_at = ?, revoked_by = ?, revoked_reason = ? "
            "WHERE fingerprint = ? AND revoked_at IS NULL",
            (utc_now(), self.acting.name, reason, fingerprint),
        )
        self._touch("examiners", [fingerprint])

    def set_examiner_roles(self, fingerprint: str, roles: frozenset[Role]) -> None:
        self._writing().execute(
            "UPDATE examiners SET roles = ? WHERE fingerprint = ?",
            (json.dumps(sorted(r.value for r in roles)), fingerprint),
        )
        self._touch("examiners", [fingerprint])

    def set_gallery_setting(self, key: str, value: str | None) -> None:
        """Set (or, with None, remove) a setting of the gallery itself."""
        if value is None:
            self._writing().execute("DELETE FROM gallery_settings WHERE key = ?", (key,))
            self._touch("gallery_settings", [key], removed=True)
            return
        self._writing().execute(
            "INSERT INTO gallery_settings (key, value, changed_at, changed_by) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value, "
            "changed_at = excluded.changed_at, changed_by = excluded.changed_by",
            (key, value, utc_now(), self.acting.name),
        )
        self._touch("gallery_settings", [key])
