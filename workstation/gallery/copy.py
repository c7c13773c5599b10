"""`workstation gallery copy SRC DEST`: move a gallery between the two kinds (embedded: SQLite
and FAISS files; agency: PostgreSQL and Milvus), or to another folder of the same kind.

**What is copied.** Every row, ids included (searches, decisions, reports and audit events name
faces, subjects and searches by id), column by column as the source holds them, so the audit
chain, its signatures and its row hashes verify in the copy: they cover what the rows say, not
where they are stored. Each numbered table's id high-water mark goes along, so an id the source
deleted is never given again (an old search's candidate must not become someone else). Photos
are copied file by file and checked against the SHA-256 their row records. Vectors are not
copied but rebuilt from the copied embeddings in the destination's own engine (FAISS files or
a Milvus collection), as `workstation index rebuild` does: the same probe then gives the same
candidates and scores.

**A copy is a move** (the gallery id stays: witnesses are kept by gallery id, and two live
galleries with one id and two diverging chains would be a fork). In order:

1. the source's write lock is taken (no act can commit meanwhile), the examiner must be one of
   its administrators, and its whole chain is verified, rows included: a source edited outside
   the program is refused, nothing copied;
2. the destination (empty: a new folder, or an agency gallery just made by `agency init`) is
   marked as an unfinished copy and the mark is committed (workstation.gallery.moving);
3. rows and photos are written into one open transaction of the destination, with progress
   and cancel;
4. the source records `gallery_copied_out` (destination, head copied), still uncommitted, and
   that event is copied too; the mark is removed and the destination's chain and rows are
   verified inside its transaction, its head held to the source's;
5. the source commits (it is now frozen: gallery.moving) and witnesses its last head; then the
   destination commits;
6. the destination, opened as a gallery, records `gallery_copied_in` (source, the same head) as
   its first new event, so a witness sees one continuous chain: ... head, copied_out, copied_in;
   then its vectors are rebuilt (an audited `index_rebuild`) and the whole chain verified where
   it now lies.

Interrupted in 1-4 (cancel, error, kill), nothing of the source changed and the destination's
transaction rolls back to the empty, marked database, which never opens as a gallery; running
the same copy again makes it whole. Interrupted between the two commits of 5, the source is
frozen and the destination empty and marked: running the same copy again copies the frozen
source (its last event already names this destination) and finishes it.

Administrator only (the source's roles at the lock). Into an agency gallery the rows keep the
examiners who wrote them, so the copy connects as a role that may write them (the database's
owner, as `agency init` does).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from workstation.audit.actions import AuditAction
from workstation.audit.roles import refusal
from workstation.audit.verify import check_rows, verify_events
from workstation.errors import GalleryError, NotPermittedError
from workstation.gallery import audit_store
from workstation.gallery.change import GalleryChange
from workstation.gallery.database import SQLITE, Database
from workstation.gallery.index_build import rebuild_index
from workstation.gallery.moving import UNFINISHED_COPY_KEY, moved_refusal, unfinished_copy
from workstation.gallery.opening import EMBEDDED, gallery_kind, open_database
from workstation.gallery.photo_copies import IMAGES_DIR, fsync_folders
from workstation.gallery.schema import SCHEMA_VERSION, TABLES
from workstation.gallery.store import Gallery
from workstation.hashing import sha256_bytes
from workstation.progress import CancelToken, Progress, Work

# The tables a copy moves, in the order their rows must arrive, with the columns each is read in
# order of (keyset paging: a PostgreSQL cursor would otherwise hold a whole table of embeddings
# in memory); the tables whose ids the database gives, for which the destination goes on
# counting above the source's high-water mark (deleted ids included); and those left out. A
# table the schema's list does not know is refused, not left behind (schema.TABLES).
COPIED_TABLES: tuple[tuple[str, tuple[str, ...]], ...] = tuple(
    (table.name, table.key) for table in TABLES if table.copied
)
NUMBERED_TABLES = tuple(table.name for table in TABLES if table.numbered)
NOT_COPIED = frozenset(table.name for table in TABLES if not table.copied)
BATCH = 2_000


@dataclass
class CopySummary:
    """What a finished copy did."""

    source: str
    destination: str
    kind: str
    rows: dict[str, int] = field(default_factory=dict)
    photos: int = 0
    vectors: int = 0
    moved_at: tuple[int, str] = (0, "")  # the source's last event: gallery_copied_out
    head: tuple[int, str] = (0, "")  # the destination's head after the copy
    events_verified: int = 0


def copy_gallery(
    source: Gallery,
    destination: Path | str,
    cancel: CancelToken | None = None,
    database_role: str | None = None,
) -> Work[CopySummary | None]:
    """Move the gallery `source` into `destination` (see the module docstring); yields
    progress, returns the summary (None when cancelled: the destination stays marked).

    Args:
        database_role: the PostgreSQL role that writes the copied rows into an agency
            destination whose gallery.toml names no user (default: the examiner's login). The
            rows keep the examiners who wrote them, which the agency's guards let only the
            database's owner (or a member of its owner role) write.
    """
    dest_folder = Path(destination).expanduser()
    if source.read_only:
        raise GalleryError(f"{source.folder}: opened read-only; a copy freezes the source")
    if dest_folder.resolve() == source.folder.resolve():
        raise GalleryError(f"{dest_folder}: the destination is the source itself")
    if gallery_kind(dest_folder) is None and dest_folder.exists() and any(dest_folder.iterdir()):
        raise GalleryError(
            f"{dest_folder}: the folder holds other files and no gallery; copy into a new "
            "folder (an embedded gallery) or one `workstation agency init` made"
        )
    created = not dest_folder.exists()
    dest_db, kind = open_database(dest_folder, database_role or source.examiner.name)
    try:
        copied = yield from _copy_rows(source, dest_db, dest_folder, kind, cancel)
    except BaseException:
        if created and kind == EMBEDDED and unfinished_copy(dest_db) is None:
            # Refused before anything was written (the source's chain, the examiner's role):
            # the new folder goes again rather than stay as an empty database that would
            # open as a new gallery.
            dest_db.close()
            shutil.rmtree(dest_folder, ignore_errors=True)
        raise
    finally:
        dest_db.close()
    if copied is None:
        return None
    summary, copied_out = copied
    yield Progress(0, 0, f"{dest_folder}: recording where the gallery came from")
    with Gallery(dest_folder, examiner=source.examiner) as dest:
        with dest.change(
            AuditAction.GALLERY_COPIED_IN,
            {
                "source": str(source.folder.resolve()),
                "source_kind": source.kind,
                "source_database": source.database_source,
                "head_seq": copied_out[0],
                "head_hash": copied_out[1],
            },
        ):
            pass
        index = yield from rebuild_index(dest, reason=f"copied from {source.folder}")
        summary.vectors = int(index.count) if index is not None else 0
        yield Progress(0, 0, f"{dest_folder}: verifying the audit chain where it now lies")
        report = dest.verify_audit()
        if not report.intact:
            raise GalleryError(
                f"{dest_folder}: the copy's audit chain does not verify ({report.problem})"
            )
        summary.events_verified = report.events
        summary.head = dest.audit_head()
        source.witness_problems.extend(dest.witness_problems)
    return summary


def _copy_rows(
    source: Gallery, dest: Database, dest_folder: Path, kind: str, cancel: CancelToken | None
) -> Work[tuple[CopySummary, tuple[int, str]] | None]:
    """Steps 1-5 of the module docstring; None when cancelled."""
    _check_destination(source, dest, dest_folder)
    moved = audit_store.last_event(source.conn)
    finishing = moved is not None and moved.action == AuditAction.GALLERY_COPIED_OUT.value
    change: GalleryChange | None = None
    if finishing:
        assert moved is not None
        named = str(moved.details.get("destination", ""))
        if Path(named).resolve() != dest_folder.resolve():
            raise GalleryError(moved_refusal(source.conn, source.folder) or named)
        source.conn.begin_read()
    else:
        change = source.open_change(save_index=False)
    photos_written: list[Path] = []
    try:
        if change is not None:
            problem = refusal(
                change.acting.name, change.acting.roles, AuditAction.GALLERY_COPIED_OUT, {}
            )
            if problem is not None:
                raise NotPermittedError(problem)
        yield Progress(0, 0, f"{source.folder}: verifying the audit chain and every row")
        report = source.verify_audit()
        if not report.intact:
            raise GalleryError(
                f"{source.folder}: the audit chain does not verify ({report.problem}); a "
                "gallery that does not verify is not copied (nothing was copied)"
            )
        _check_tables(source.conn, dest)
        started = datetime.now(UTC).isoformat(timespec="seconds")
        _mark_unfinished(dest, source, started)
        head = source.audit_head()
        summary = CopySummary(str(source.folder), str(dest_folder), kind)
        dest.begin_write()
        try:
            result = yield from _copy_tables(
                source, dest, dest_folder, summary, photos_written, cancel
            )
            if result is None:
                dest.rollback()
                _remove(photos_written)
                if change is not None:
                    change.rollback()
                return None
            highest = {table: source.conn.id_high_water(table) for table in NUMBERED_TABLES}
            for table, top in highest.items():
                dest.set_id_high_water(table, top)
            if change is not None:
                event = change.record(
                    AuditAction.GALLERY_COPIED_OUT,
                    {
                        "destination": str(dest_folder.resolve()),
                        "destination_kind": kind,
                        "destination_database": dest.source,
                        "head_seq": head[0],
                        "head_hash": head[1],
                        "rows": dict(summary.rows),
                        "highest_ids": highest,
                    },
                )
                _copy_range(source.conn, dest, "audit", "seq > ?", (head[0],))
                _copy_range(source.conn, dest, "audit_rows", "seq > ?", (head[0],))
                copied_out = (event.seq, event.hash)
            else:
                assert moved is not None
                copied_out = (moved.seq, moved.hash)
            dest.execute("DELETE FROM meta WHERE key = ?", (UNFINISHED_COPY_KEY,))
            yield Progress(0, 0, f"{dest_folder}: verifying the copied chain and every row")
            _verify_copy(dest, dest_folder, copied_out)
            fsync_folders([dest_folder / IMAGES_DIR])
            if change is not None:
                # The source is frozen from here on (its last event names the destination).
                change.commit()
            dest.commit()
        except BaseException:
            dest.rollback()
            _remove(photos_written)
            raise
    except BaseException:
        if change is not None:
            change.rollback()
        raise
    finally:
        if finishing and source.conn.in_transaction:
            source.conn.commit()
    summary.moved_at = copied_out
    return summary, copied_out


def _check_destination(source: Gallery, dest: Database, dest_folder: Path) -> None:
    """An empty destination (or one an earlier attempt left marked and empty) of this version."""
    if dest.schema_version() != SCHEMA_VERSION or source.conn.schema_version() != SCHEMA_VERSION:
        raise GalleryError(
            f"{dest_folder}: schema version {dest.schema_version()}, the source "
            f"{source.conn.schema_version()}, this program {SCHEMA_VERSION}: open both with "
            "this version first (an agency gallery: `workstation agency init` again)"
        )
    held = []
    for table, _ in COPIED_TABLES:
        if table == "meta":
            (count,) = dest.execute(
                "SELECT COUNT(*) FROM meta WHERE key <> ?", (UNFINISHED_COPY_KEY,)
            ).fetchone()
        else:
            (count,) = dest.execute(f"SELECT COUNT(*) FROM {table}").fetchone()
        if count:
            held.append(f"{count} {table} rows")
    if held:
        raise GalleryError(
            f"{dest_folder}: the destination is not empty ({', '.join(held)}); a gallery is "
            "copied only into a new folder or a newly made agency gallery"
        )
    mark = unfinished_copy(dest)
    if mark is not None and Path(str(mark.get("source"))).resolve() != source.folder.resolve():
        raise GalleryError(
            f"{dest_folder}: marked as an unfinished copy of another gallery "
            f"({mark.get('source')}); remove it first"
        )


def _mark_unfinished(dest: Database, source: Gallery, started: str) -> None:
    mark = json.dumps(
        {"source": str(source.folder.resolve()), "started_at": started, "examiner": source.user}
    )
    dest.begin_write()
    try:
        dest.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (UNFINISHED_COPY_KEY, mark),
        )
        dest.commit()
    except BaseException:
        dest.rollback()
        raise


def _tables(db: Database) -> set[str]:
    if db.dialect == SQLITE:
        sql = "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    else:
        sql = "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
    return {str(row[0]) for row in db.execute(sql)} - NOT_COPIED


def _columns(db: Database, table: str) -> list[str]:
    cursor = db.execute(f"SELECT * FROM {table} WHERE 1 = 0")
    return [str(column[0]) for column in cursor.description]


def _check_tables(source: Database, dest: Database) -> None:
    known = {table for table, _ in COPIED_TABLES}
    unknown = sorted(_tables(source) - known)
    if unknown:
        raise GalleryError(
            f"{source.source}: holds tables this program's copy does not know "
            f"({', '.join(unknown)}); nothing was copied"
        )
    for table in known:
        if set(_columns(source, table)) != set(_columns(dest, table)):
            raise GalleryError(
                f"{source.source} and {dest.source} have different {table} tables; open both "
                "with this program version first"
            )


def _quoted(columns: Sequence[str]) -> str:
    return ", ".join(f'"{c}"' for c in columns)


def _pages(
    db: Database,
    table: str,
    columns: list[str],
    order: tuple[str, ...],
    where: str = "",
    params: Sequence[Any] = (),
) -> Iterator[list[list[Any]]]:
    """The rows of `table` in pages of BATCH, in `order` (keyset paging)."""
    keys = [columns.index(c) for c in order]
    after: list[Any] | None = None
    while True:
        conditions = [where] if where else []
        values = list(params)
        if after is not None:
            conditions.append(f"({_quoted(order)}) > ({', '.join('?' * len(order))})")
            values += after
        sql = f"SELECT {_quoted(columns)} FROM {table}"
        if conditions:
            sql += " WHERE " + " AND ".join(conditions)
        sql += f" ORDER BY {_quoted(order)} LIMIT {BATCH}"
        rows = [list(row) for row in db.execute(sql, values).fetchall()]
        if not rows:
            return
        yield rows
        after = [rows[-1][k] for k in keys]


def _insert_sql(table: str, columns: list[str]) -> str:
    sql = f"INSERT INTO {table} ({_quoted(columns)}) VALUES ({', '.join('?' * len(columns))})"
    if table == "meta":
        sql += " ON CONFLICT (key) DO UPDATE SET value = excluded.value"
    return sql


def _copy_tables(
    source: Gallery,
    dest: Database,
    dest_folder: Path,
    summary: CopySummary,
    photos_written: list[Path],
    cancel: CancelToken | None,
) -> Work[bool | None]:
    conn = source.conn
    counts = {
        t: int(conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]) for t, _ in COPIED_TABLES
    }
    total, done = sum(counts.values()), 0
    for table, order in COPIED_TABLES:
        columns = _columns(conn, table)
        insert = _insert_sql(table, columns)
        summary.rows[table] = 0
        for rows in _pages(conn, table, columns, order):
            if cancel is not None and cancel.cancelled:
                yield Progress(done, total, "cancelled: nothing was moved")
                return None
            if table == "images":
                stored_at, sha_at = columns.index("stored_path"), columns.index("sha256")
                for row in rows:
                    if row[stored_at]:
                        written = _copy_photo(source, dest_folder, row[stored_at], row[sha_at])
                        summary.photos += 1
                        if written is not None:
                            photos_written.append(written)
            dest.executemany(insert, rows)
            summary.rows[table] += len(rows)
            done += len(rows)
            yield Progress(
                done, total, f"copied {summary.rows[table]:,} of {counts[table]:,} {table} rows"
            )
    return True


def _copy_range(
    source: Database, dest: Database, table: str, where: str, params: Sequence[Any]
) -> None:
    columns = _columns(source, table)
    order = dict(COPIED_TABLES)[table]
    for rows in _pages(source, table, columns, order, where, params):
        dest.executemany(_insert_sql(table, columns), rows)


def _copy_photo(source: Gallery, dest_folder: Path, stored_path: str, sha256: str) -> Path | None:
    """Copy one stored photo, checked against its SHA-256; the file written (None: the
    destination already held the same bytes)."""
    relative = Path(stored_path)
    if relative.is_absolute() or ".." in relative.parts or relative.parts[:1] != (IMAGES_DIR,):
        raise GalleryError(
            f"{source.folder}: a photo row names {stored_path!r}, outside the gallery's "
            f"{IMAGES_DIR}/; nothing was copied"
        )
    try:
        data = (source.folder / relative).read_bytes()
    except OSError as exc:
        raise GalleryError(
            f"{source.folder / relative}: the stored photo cannot be read ({exc}); nothing was "
            "copied"
        ) from exc
    if sha256_bytes(data) != sha256:
        raise GalleryError(
            f"{source.folder / relative}: does not match the SHA-256 its record holds "
            f"({sha256[:16]}…): altered or replaced; nothing was copied"
        )
    target = dest_folder / relative
    if target.is_file() and sha256_bytes(target.read_bytes()) == sha256:
        return None
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    with open(partial, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    partial.replace(target)
    return target


def _remove(paths: list[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


def _verify_copy(dest: Database, dest_folder: Path, copied_out: tuple[int, str]) -> None:
    """The copied chain and every copied row, inside the destination's open transaction."""
    report = verify_events(audit_store.iter_events(dest), audit_store.iter_row_entries(dest))
    if report.intact:
        _, problem = check_rows(audit_store.DatabaseRowSource(dest), skip=audit_store.uncovered)
        if problem is not None:
            report.intact, report.problem = False, problem
    if not report.intact:
        raise GalleryError(
            f"{dest_folder}: the copied audit chain does not verify ({report.problem}); "
            "nothing was moved"
        )
    if (report.head_seq, report.head_hash) != copied_out:
        raise GalleryError(
            f"{dest_folder}: the copy ends at event {report.head_seq}, the source at "
            f"{copied_out[0]}; nothing was moved"
        )
