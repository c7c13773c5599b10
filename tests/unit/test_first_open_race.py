"""Several connections opening a new gallery at once (the app's workers at start-up: identity,
thumbnails, the audit viewer) must leave one whole gallery at the current schema version.

Each connection read the version before waiting for the write lock, so a late one re-ran
migrations another had already applied: idempotent ones set the version back, and the first
that was not (an ADD COLUMN) failed, leaving a gallery every later open refused ("duplicate
column name"). Seen on a newcomer's first start of the app.
"""

from __future__ import annotations

import threading
from pathlib import Path

from workstation.gallery.schema import SCHEMA_VERSION
from workstation.gallery.store import Gallery


def test_a_new_gallery_opened_by_many_connections_at_once_is_whole(tmp_path: Path) -> None:
    folder = tmp_path / "g"
    start = threading.Barrier(6)
    problems: list[BaseException] = []

    def open_it() -> None:
        start.wait()
        try:
            with Gallery(folder) as gallery:
                gallery.acting_examiner()
        except BaseException as exc:  # collected: the test names every failure
            problems.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert problems == []
    with Gallery(folder, read_only=True) as gallery:
        assert gallery._conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    with Gallery(folder) as gallery:
        assert gallery.acting_examiner() is not None
        report = gallery.verify_audit()
        assert report.intact, report.problem
        # One genesis: one first administrator, however many opened the new gallery.
        genesis = [e for e in gallery.audit_events() if e.action == "genesis"]
        assert len(genesis) == 1
