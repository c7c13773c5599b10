"""Data at rest: everything workstation writes is for the owner (or the owner and the examiners'
group) only; folders older versions left open are reported and fixed by command."""

from __future__ import annotations

import io
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from examiners import open_as

from workstation.audit.actions import AuditAction
from workstation.cli import main
from workstation.paths import config_dir, data_dir

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(autouse=True)
def usual_umask(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Start each test from the common default umask 022 (files 0644, folders 0755), as an
    examiner's session has, so the tests prove that workstation itself makes things private."""
    import workstation.permissions as permissions

    monkeypatch.setattr(permissions, "_ORIGINAL_UMASK", None)
    monkeypatch.delenv("WORKSTATION_GROUP", raising=False)
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def modes_under(folder: Path) -> dict[str, int]:
    return {
        str(path.relative_to(folder)): mode(path) for path in [folder, *sorted(folder.rglob("*"))]
    }


def _enrol_search_export(tmp_path: Path, photo_paths: dict[str, Path]) -> tuple[Path, Path]:
    gallery = tmp_path / "agency" / "gallery"
    bundle = tmp_path / "exports" / "case.json"
    bundle.parent.mkdir()  # the examiner's own folder, made with their umask
    for subject, photo in (("P-1", "obama"), ("P-2", "biden")):
        code, _, err = run(
            "--gallery", str(gallery), "enroll", "--subject", subject, str(photo_paths[photo])
        )
        assert code == 0, err
    code, _, err = run(
        "--gallery",
        str(gallery),
        "search",
        "--case",
        "C-1",
        "--purpose",
        "p",
        str(photo_paths["obama2"]),
    )
    assert code == 0, err
    assert run("--gallery", str(gallery), "settings", "set", "top_k", "25")[0] == 0
    code, _, err = run("--gallery", str(gallery), "export", "--case", "C-1", "--out", str(bundle))
    assert code == 0, err
    return gallery, bundle


def test_everything_written_is_for_the_owner_only(
    tmp_path: Path, photo_paths: dict[str, Path]
) -> None:
    gallery, bundle = _enrol_search_export(tmp_path, photo_paths)
    found = modes_under(gallery)
    assert {"gallery.sqlite", "images", "faces.vectors.f32", "faces.faiss.json"} <= set(found)
    assert any(name.startswith("images/") and name.endswith(".jpg") for name in found)
    for name, value in found.items():
        is_dir = (gallery / name).is_dir()
        assert value == (0o700 if is_dir else 0o600), f"{name}: {value:04o}"
    # The parent made for it too, the settings (recent cases) and its folder, the export.
    assert mode(gallery.parent) == 0o700
    assert mode(config_dir()) == 0o700 and mode(config_dir() / "settings.json") == 0o600
    assert mode(bundle) == 0o600
    assert mode(bundle.parent) == 0o755  # the examiner's own folder is left as it was


def test_sqlite_side_files_get_the_database_mode(tmp_path: Path) -> None:
    with open_as(tmp_path / "g", "examiner1") as gallery:
        with gallery.change() as change:
            change.record(AuditAction.ENROL, {"n": 1})
        names = {p.name: mode(p) for p in (tmp_path / "g").iterdir()}
    assert names["gallery.sqlite-wal"] == 0o600 and names["gallery.sqlite-shm"] == 0o600
    assert names["gallery.sqlite"] == 0o600 and mode(tmp_path / "g") == 0o700


def test_error_log_is_private(tmp_path: Path, qtbot) -> None:
    from PySide6.QtWidgets import QMainWindow

    from workstation.gui.app import install_error_hook
    from workstation.permissions import restrict_process

    restrict_process()  # as the program's entry point does
    window = QMainWindow()
    qtbot.addWidget(window)
    log_path, uninstall = install_error_hook(window)
    try:
        import logging

        logging.getLogger("workstation.gui").error("probe /cases/2026-0042/suspect.jpg failed")
    finally:
        uninstall()
    assert log_path.parent == data_dir()
    assert mode(data_dir()) == 0o700 and mode(log_path) == 0o600


def _a_group() -> tuple[str, int]:
    import grp

    if os.geteuid() == 0:
        for name in ("users", "nogroup", "staff"):
            try:
                return name, grp.getgrnam(name).gr_gid
            except KeyError:
                continue
    gid = os.getgroups()[-1] if os.getgroups() else os.getegid()
    return grp.getgrgid(gid).gr_name, gid


def test_examiners_group_shares_the_gallery(
    tmp_path: Path, photo_paths: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    group, gid = _a_group()
    monkeypatch.setenv("WORKSTATION_GROUP", group)
    gallery, bundle = _enrol_search_export(tmp_path, photo_paths)
    for path in [gallery, *gallery.rglob("*")]:
        status = os.lstat(path)
        wanted = 0o2770 if path.is_dir() else 0o660
        assert stat.S_IMODE(status.st_mode) == wanted, f"{path}: {stat.S_IMODE(status.st_mode):o}"
        assert status.st_gid == gid, f"{path} belongs to group {status.st_gid}, not {gid}"
    assert mode(bundle) == 0o600  # exports stay the examiner's own
    code, out, _ = run("--gallery", str(gallery), "permissions")
    assert code == 0 and f"owner and the examiners' group {group}" in out


def test_an_unknown_group_is_refused_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WORKSTATION_GROUP", "no-such-examiners-group")
    code, _, err = run(
        "--gallery", str(tmp_path / "g"), "subjects", "--case", "C-1", "--purpose", "test"
    )
    assert code == 1
    assert err.startswith("error: WORKSTATION_GROUP=no-such-examiners-group: there is no such")


def test_an_old_open_gallery_is_reported_then_fixed(
    tmp_path: Path, photo_paths: dict[str, Path]
) -> None:
    gallery, _ = _enrol_search_export(tmp_path, photo_paths)
    # As an older version left it: folders 0755, files 0644.
    for path in [gallery, *gallery.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    code, _, err = run("--gallery", str(gallery), "subjects", "--case", "C-1", "--purpose", "test")
    assert code == 0
    assert f"warning: {gallery} can be read by every user of this PC (mode 0755)" in err
    assert "run `workstation permissions --fix`" in err
    code, out, _ = run("--gallery", str(gallery), "permissions")
    assert code == 1 and f"{gallery} can be read by every user" in out

    code, out, err = run("--gallery", str(gallery), "permissions", "--fix")
    assert code == 0, err
    assert "recorded in the audit log" in out
    assert all(
        value == (0o700 if (gallery / name).is_dir() else 0o600)
        for name, value in modes_under(gallery).items()
    )
    code, _, err = run("--gallery", str(gallery), "subjects", "--case", "C-1", "--purpose", "test")
    assert code == 0 and "warning" not in err
    code, out, _ = run(
        "--gallery",
        str(gallery),
        "audit",
        "show",
        "--case",
        "C-1",
        "--purpose",
        "test",
        "--all",
        "--json",
    )
    fixes = [e for e in map(json.loads, out.splitlines()) if e["action"] == "permissions_fix"]
    assert len(fixes) == 1 and fixes[0]["details"]["changed"][str(gallery)] > 0


def test_a_group_readable_folder_without_a_configured_group_is_reported(tmp_path: Path) -> None:
    with open_as(tmp_path / "g", "examiner1"):
        pass
    (tmp_path / "g").chmod(0o750)
    code, _, err = run(
        "--gallery", str(tmp_path / "g"), "subjects", "--case", "C-1", "--purpose", "test"
    )
    assert code == 0
    assert "can be read by the members of its group (mode 0750)" in err
