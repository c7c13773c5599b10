"""The gallery's cases and what was done in them, as read: part of `Gallery`.

Cases, their searches (and the one record of a search built from the stored rows, issue 14 item
1), decisions, comparison sheets, redaction marks, watches and calibrations. See
`subject_reads` for why `Gallery`'s reads are split by module. Nothing here writes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workstation.domain import Decision, DecisionRecord
from workstation.errors import GalleryError
from workstation.gallery.case_writes import CALIBRATION_COLUMNS
from workstation.gallery.database import Database, chunks, dict_rows
from workstation.gallery.records import SearchRecord, record_from_row
from workstation.gallery.sheets import (
    ComparisonSheet,
    SheetsView,
    blind_view,
    withhold_decisions,
)

_DECISION_COLUMNS = (
    'id, search_id, subject_id, decision, note, "user", created_at, confirms, key_fingerprint'
)
_CALIBRATION_COLUMNS = ", ".join(("id", *CALIBRATION_COLUMNS))


def _decision(row: tuple[Any, ...]) -> DecisionRecord:
    return DecisionRecord(
        id=int(row[0]),
        search_id=int(row[1]),
        subject_id=row[2],
        decision=Decision(row[3]),
        note=row[4],
        user=row[5],
        created_at=row[6],
        confirms=None if row[7] is None else int(row[7]),
        key_fingerprint=row[8],
    )


class CaseReads:
    """Cases, searches, decisions, sheets, redaction marks, watches, calibrations (a part of
    `Gallery`)."""

    if TYPE_CHECKING:
        _conn: Database
        folder: Path

        @property
        def user(self) -> str: ...

        def read_snapshot(self) -> AbstractContextManager[None]: ...

    def case(self, case_id: str) -> dict[str, Any] | None:
        rows = dict_rows(self._conn.execute("SELECT * FROM cases WHERE id = ?", (case_id,)))
        return rows[0] if rows else None

    def cases(self) -> list[dict[str, Any]]:
        return dict_rows(self._conn.execute("SELECT * FROM cases ORDER BY created_at DESC"))

    def case_activity(self) -> list[dict[str, Any]]:
        """Every case row with what was done in it: `searches`, `leads` (candidates whose
        standing decision is a possible lead), `confirmations`, `examiners` (who acted on it,
        in the order they first did) and `last_activity` (its latest audited act's time).

        Call inside `read_snapshot()` so the counts agree with each other.
        """
        cases = {str(row["id"]): row for row in self.cases()}
        for row in cases.values():
            row.update(searches=0, leads=0, confirmations=0, examiners=[], last_activity=None)
        for case_id, count in self._conn.execute(
            "SELECT case_id, COUNT(*) FROM searches GROUP BY case_id"
        ):
            if case_id in cases:
                cases[case_id]["searches"] = int(count)
        # The standing decision on each candidate is the latest one that is not a confirmation;
        # a confirmation counts while the lead it confirms still stands.
        standing: dict[tuple[str, int, str], tuple[int, str]] = {}
        confirmed: list[tuple[str, int, str, int]] = []
        for case_id, search_id, subject_id, decision, decision_id, confirms in self._conn.execute(
            "SELECT s.case_id, d.search_id, d.subject_id, d.decision, d.id, d.confirms "
            "FROM decisions d JOIN searches s ON s.id = d.search_id ORDER BY d.id"
        ):
            key = (str(case_id), int(search_id), str(subject_id))
            if decision == Decision.CONFIRMED.value:
                confirmed.append((*key, int(confirms or 0)))
            else:
                standing[key] = (int(decision_id), str(decision))
        for (case_id, _search, _subject), (_id, decision) in standing.items():
            if case_id in cases and decision == Decision.POSSIBLE_LEAD.value:
                cases[case_id]["leads"] += 1
        for case_id, search_id, subject_id, lead_id in confirmed:
            lead = standing.get((case_id, search_id, subject_id))
            if case_id in cases and lead is not None and lead[0] == lead_id:
                cases[case_id]["confirmations"] += 1
        # Whoever enrolled a face a watch then searched did not act on the case: their
        # watch_search events count as activity, not as an examiner of the case. A read
        # (`view`: listing the cases, opening one) is not an act on it either: a supervisor
        # reading a case neither joins its examiners nor moves its last activity.
        for case_id, user, _first, last, only_watch in self._conn.execute(
            'SELECT case_id, "user", MIN(seq), MAX(time), '
            "MIN(CASE WHEN action = 'watch_search' THEN 1 ELSE 0 END) FROM audit "
            "WHERE case_id IS NOT NULL AND action <> 'view' "
            'GROUP BY case_id, "user" ORDER BY MIN(seq)'
        ):
            acted = cases.get(str(case_id))
            if acted is None:
                continue
            if not only_watch:
                acted["examiners"].append(str(user))
            if acted["last_activity"] is None or str(last) > acted["last_activity"]:
                acted["last_activity"] = str(last)
        return list(cases.values())

    def watch_rows(
        self, watch_id: int | None = None, active_only: bool = False
    ) -> list[dict[str, Any]]:
        """Watches as rows, oldest first (the embedding as bytes, None once ended); one watch
        with `watch_id`, only those not ended with `active_only`."""
        sql, params = "SELECT * FROM watches", []
        where = []
        if watch_id is not None:
            where.append("id = ?")
            params.append(int(watch_id))
        if active_only:
            where.append("ended_at IS NULL")
        if where:
            sql += " WHERE " + " AND ".join(where)
        return dict_rows(self._conn.execute(sql + " ORDER BY id", params))

    def watch_hit_rows(self, watch_ids: Iterable[int]) -> list[dict[str, Any]]:
        """The hits of these watches, oldest first."""
        found: list[dict[str, Any]] = []
        for chunk in chunks([int(i) for i in watch_ids]):
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT * FROM watch_hits WHERE watch_id IN ({marks}) ORDER BY id"
            found += dict_rows(self._conn.execute(sql, chunk))
        return sorted(found, key=lambda r: int(r["id"]))

    def search_row(self, search_id: int) -> dict[str, Any] | None:
        """A stored search as its row (JSON columns still as text), or None."""
        rows = dict_rows(self._conn.execute("SELECT * FROM searches WHERE id = ?", (search_id,)))
        return rows[0] if rows else None

    def searches_of_case(self, case_id: str) -> list[dict[str, Any]]:
        """The stored searches of a case as rows, oldest first."""
        sql = "SELECT * FROM searches WHERE case_id = ? ORDER BY id"
        return dict_rows(self._conn.execute(sql, (case_id,)))

    def decision(self, decision_id: int) -> DecisionRecord | None:
        row = self._conn.execute(
            f"SELECT {_DECISION_COLUMNS} FROM decisions WHERE id = ?", (decision_id,)
        ).fetchone()
        return None if row is None else _decision(row)

    def decisions_for(self, search_id: int, subject_id: str | None = None) -> list[DecisionRecord]:
        """The decisions on a search's candidates (or on one subject of it), oldest first."""
        sql = f"SELECT {_DECISION_COLUMNS} FROM decisions WHERE search_id = ?"
        params: list[Any] = [search_id]
        if subject_id is not None:
            sql += " AND subject_id = ?"
            params.append(subject_id)
        return [_decision(row) for row in self._conn.execute(sql + " ORDER BY id", params)]

    def visible_decisions(self, search_id: int) -> tuple[list[DecisionRecord], dict[str, int]]:
        """The decisions on a search's candidates that this gallery's examiner may see now, and
        per subject how many blind verification withholds (`sheets.withhold_decisions`): the
        read for display; `decisions_for` is the acts' own read."""
        with self.read_snapshot():
            decisions = self.decisions_for(search_id)
            versions: dict[str, list[ComparisonSheet]] = {}
            for sheet in self._comparison_sheet_rows([search_id]):
                versions.setdefault(sheet.subject_id, []).append(sheet)
        blind = [s for s, found in versions.items() if blind_view(found, self.user, s).blind]
        return withhold_decisions(decisions, blind, self.user)

    def comparison_sheets(self, search_id: int, subject_id: str) -> SheetsView:
        """The ACE-V sheets on one candidate that this gallery's examiner may see now: blind
        verification (`sheets.blind_view`) withholds other examiners' sheets until they have
        recorded their own. The only public read of sheets, with the records' (below)."""
        return blind_view(
            self.comparison_sheet_versions(search_id, subject_id), self.user, subject_id
        )

    def redaction_mark_rows(self, search_ids: Iterable[int]) -> list[dict[str, Any]]:
        """The redaction marks (gallery/redactions.py) on these searches' probes, oldest first."""
        if not self._conn.table_exists("redaction_marks"):
            return []  # a gallery read at an older schema (opened read-only) has none
        rows: list[dict[str, Any]] = []
        for chunk in chunks(list(search_ids)):
            marks = ",".join("?" * len(chunk))
            rows += dict_rows(
                self._conn.execute(
                    f"SELECT * FROM redaction_marks WHERE search_id IN ({marks}) ORDER BY id",
                    list(chunk),
                )
            )
        return sorted(rows, key=lambda row: int(row["id"]))

    def comparison_sheet_versions(
        self, search_id: int, subject_id: str | None = None
    ) -> list[ComparisonSheet]:
        """Every version of every sheet on a search's candidates (or one subject's), oldest
        first, unfiltered: for the act that records a sheet (which role it takes) and for the
        reads above, which apply the blind rule; never shown as they are."""
        return self._comparison_sheet_rows([search_id], subject_id)

    def _comparison_sheet_rows(
        self, search_ids: list[int], subject_id: str | None = None
    ) -> list[ComparisonSheet]:
        if not self._conn.table_exists("comparison_sheets"):
            return []  # a gallery read at an older schema (opened read-only) has none
        found: list[ComparisonSheet] = []
        for chunk in chunks(search_ids):
            marks = ",".join("?" * len(chunk))
            sql = (
                'SELECT id, search_id, subject_id, role, verifies, "user", key_fingerprint, '
                f"created_at, sheet FROM comparison_sheets WHERE search_id IN ({marks})"
            )
            params: list[Any] = list(chunk)
            if subject_id is not None:
                sql += " AND subject_id = ?"
                params.append(subject_id)
            rows = self._conn.execute(sql, params).fetchall()
            found += [
                ComparisonSheet(
                    id=int(row[0]),
                    search_id=int(row[1]),
                    subject_id=row[2],
                    role=row[3],
                    verifies=None if row[4] is None else int(row[4]),
                    examiner=row[5],
                    key_fingerprint=row[6],
                    created_at=row[7],
                    body=json.loads(row[8]),
                )
                for row in rows
            ]
        return sorted(found, key=lambda sheet: sheet.id)

    def decision_count_for_subject(self, subject_id: str) -> int:
        sql = "SELECT COUNT(*) FROM decisions WHERE subject_id = ?"
        return int(self._conn.execute(sql, (subject_id,)).fetchone()[0])

    def latest_calibration_row(self, model_id: str) -> dict[str, Any] | None:
        """The most recent stored calibration of a model as its row (JSON still as text)."""
        sql = (
            f"SELECT {_CALIBRATION_COLUMNS} FROM calibrations WHERE model_id = ? "
            "ORDER BY id DESC LIMIT 1"
        )
        rows = dict_rows(self._conn.execute(sql, (model_id,)))
        return rows[0] if rows else None

    def calibration_row(self, calibration_id: int) -> dict[str, Any] | None:
        sql = f"SELECT {_CALIBRATION_COLUMNS} FROM calibrations WHERE id = ?"
        rows = dict_rows(self._conn.execute(sql, (calibration_id,)))
        return rows[0] if rows else None

    def search_record(self, search_id: int) -> SearchRecord:
        """The record of one stored search, with its decisions and today's subject names."""
        with self.read_snapshot():
            row = self.search_row(search_id)
            if row is None:
                raise GalleryError(
                    f"search {search_id} does not exist in the gallery {self.folder}"
                )
            return self._search_records([row])[0]

    def case_search_records(self, case_id: str) -> list[SearchRecord]:
        """Every search of a case, oldest first, each with its decisions."""
        with self.read_snapshot():
            return self._search_records(self.searches_of_case(case_id))

    def _search_records(self, rows: list[dict[str, Any]]) -> list[SearchRecord]:
        """Records of stored search rows: their decisions, and the names and face quality of
        their candidates as the gallery holds them now (call inside `read_snapshot`)."""
        if not rows:
            return []
        ids = [int(row["id"]) for row in rows]
        subject_ids: set[str] = set()
        face_ids: set[int] = set()
        for row in rows:
            for stored in json.loads(row["candidates"]):
                subject_ids.add(str(stored["subject_id"]))
                face_ids.add(int(stored["face_id"]))
        decisions: dict[int, list[DecisionRecord]] = {i: [] for i in ids}
        names: dict[str, str | None] = {}
        quality: dict[int, str | None] = {}
        for chunk in chunks(ids):
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT {_DECISION_COLUMNS} FROM decisions WHERE search_id IN ({marks})"
            for row in self._conn.execute(sql + " ORDER BY id", chunk):
                decision = _decision(row)
                decisions[decision.search_id].append(decision)
        for chunk in chunks(sorted(subject_ids)):
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT id, name FROM subjects WHERE id IN ({marks})"
            names.update(self._conn.execute(sql, chunk))
        for chunk in chunks(sorted(face_ids)):
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT id, quality FROM faces WHERE id IN ({marks})"
            for face_id, text in self._conn.execute(sql, chunk):
                quality[int(face_id)] = json.loads(text).get("verdict")
        # The ACE-V sheets on each candidate, as this examiner may see them (blind rule).
        versions: dict[tuple[int, str], list[ComparisonSheet]] = {}
        for sheet in self._comparison_sheet_rows(ids):
            versions.setdefault((sheet.search_id, sheet.subject_id), []).append(sheet)
        sheets: dict[int, list[SheetsView]] = {i: [] for i in ids}
        for (search_id, subject_id), found in sorted(versions.items()):
            sheets[search_id].append(blind_view(found, self.user, subject_id))
        records = []
        for row in rows:
            search_id = int(row["id"])
            # Blind verification withholds other examiners' decisions with their sheets.
            blind = [view.subject_id for view in sheets[search_id] if view.blind]
            shown, withheld = withhold_decisions(decisions[search_id], blind, self.user)
            record = record_from_row(row, shown, names, quality).with_sheets(sheets[search_id])
            records.append(record.with_blind_decisions(shown, withheld))
        return records
