"""A settings change as one audited act in the gallery: the change is in force (the settings
file in place) exactly when its `settings_change` event is committed (see
`apply_settings_change`). The settings themselves are declared in workstation.settings, which
knows nothing of galleries."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from workstation.audit.actions import AuditAction
from workstation.gallery.store import Gallery
from workstation.permissions import make_private_dir
from workstation.settings import (
    SETTINGS_SCHEMA,
    Settings,
    changes_between,
    load_settings,
    settings_path,
    write_synced,
)


def apply_settings_change(
    gallery: Gallery, new: Settings, path: Path | None = None
) -> dict[str, list[Any]]:
    """Validate `new`, audit the change in `gallery` and save it: one act.

    The new file is written beside the old one first; then, in one gallery transaction, the
    `settings_change` event (old and new value of each changed key, and the file) is appended
    and the new file renamed into place, and the transaction commits. Any failure rolls the
    event back and leaves the old file as it was (put back if the commit itself failed after
    the rename), so no change is in force without its record and no record without its change.
    Nothing is written or audited when nothing changed. Returns the changes.
    """
    new.validate()
    path = path or settings_path()
    current = load_settings(path)  # a damaged file is reported, never overwritten
    changes = changes_between(current, new)
    if not changes:
        return {}
    previous = path.read_bytes() if path.exists() else None
    body = json.dumps({"schema": SETTINGS_SCHEMA, **new.values()}, indent=2)
    partial = path.with_name(path.name + ".part")
    renamed = False
    try:
        make_private_dir(path.parent)  # settings name folders and models: owner (and group) only
        write_synced(partial, body)
        with gallery.change() as change:
            change.record(AuditAction.SETTINGS_CHANGE, {"changes": changes, "file": str(path)})
            partial.replace(path)
            renamed = True
    except BaseException:
        if renamed:
            if previous is None:
                path.unlink(missing_ok=True)
            else:
                write_synced(partial, previous.decode("utf-8"))
                partial.replace(path)
        raise
    finally:
        partial.unlink(missing_ok=True)
    return changes
