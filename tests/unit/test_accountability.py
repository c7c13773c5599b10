"""Accountability against an insider (issue 11): real examiners with their own keys, signed
events, roles enforced in the core, and every record covered by its event's row hashes.

Each attack is made as an insider who can write the gallery folder would make it (a SQLite shell,
the append-only triggers dropped first, hashes recomputed) and must be refused, or fail
`audit verify` with a message naming the event or the row.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from examiners import examiner, open_as, register
from sqlite_file import edit_database

from workstation.audit.actions import AuditAction
from workstation.audit.log import canonical_json, event_hash
from workstation.audit.signing import SigningKey
from workstation.domain import Decision
from workstation.errors import IdentityError, KeyFileError, NotPermittedError, WorkstationError
from workstation.gallery.admin import delete_subject
from workstation.gallery.decisions import confirm_lead, record_decision
from workstation.gallery.enroll import enroll, items_for_subject
from workstation.gallery.examiners import revoke_examiner
from workstation.gallery.search import search_image
from workstation.gallery.store import Gallery
from workstation.identity import Examiner, system_login
from workstation.progress import drain
from workstation.vision.images import load_image


@pytest.fixture
def searched(gallery: Gallery, engine, photo_paths: dict[str, Path]) -> tuple[Gallery, int]:
    """Two people enrolled by the gallery's administrator, and one search by analyst alice."""
    items = items_for_subject("P-OBAMA", [photo_paths["obama"]], "Barack Obama")
    items += items_for_subject("P-BIDEN", [photo_paths["biden"]], "Joe Biden")
    drain(enroll(gallery, engine, items))
    with open_as(gallery.folder, "alice", ["analyst"]) as alice:
        result = search_image(alice, engine, load_image(photo_paths["obama2"]), "C-1", "lead")
    return gallery, result.search_id


def _rewrite_from(folder: Path, seq: int, change: dict, signer: SigningKey | None) -> None:
    """The insider's rewrite: edit event `seq`, then recompute its hash and every later hash
    and link (re-signing with `signer`, a key the insider holds, when given)."""
    with Gallery(folder, read_only=True) as gallery:
        events = gallery.audit_events()
    prev = events[seq - 2].hash if seq > 1 else "0" * 64
    statements = []
    for event in events[seq - 1 :]:
        body = event.hashed_body()
        if event.seq == seq:
            body.update(change)
        if signer is not None:
            body["key"] = signer.fingerprint
        digest = event_hash(prev, body)
        signature = event.signature
        if signer is not None:
            signature = signer.sign(b"workstation audit event v1\x00" + bytes.fromhex(digest))
        statements.append(
            (
                'UPDATE audit SET "user" = ?, case_id = ?, purpose = ?, details = ?, '
                "prev_hash = ?, hash = ?, key_fingerprint = ?, signature = ? WHERE seq = ?",
                (
                    body["user"],
                    body["case"],
                    body["purpose"],
                    canonical_json(body["details"]),
                    prev,
                    digest,
                    body.get("key"),
                    signature,
                    event.seq,
                ),
            )
        )
        prev = digest
    # hash and prev_hash are UNIQUE: move every row out of the way first, then write.
    edit_database(
        folder,
        "UPDATE audit SET hash = 'x' || hash, prev_hash = 'x' || prev_hash WHERE seq >= ?",
        (seq,),
    )
    for sql, params in statements:
        edit_database(folder, sql, params)


# ---------------------------------------------------------------------- identity and keys
def test_the_examiner_is_the_os_login_not_an_environment_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import pwd

    monkeypatch.setenv("USER", "somebody-else")
    monkeypatch.setenv("LOGNAME", "somebody-else")
    assert system_login() == pwd.getpwuid(os.getuid()).pw_name


def test_a_new_key_is_readable_by_its_owner_alone(tmp_path: Path) -> None:
    person = Examiner("ana", tmp_path / "ana-profile")
    key = person.key()
    mode = stat.S_IMODE(person.private_key_path.stat().st_mode)
    assert mode == 0o600
    assert person.public_key_path.read_text().strip() == key.public_text
    # Loaded again from the file: the same key.
    assert Examiner("ana", tmp_path / "ana-profile").key().fingerprint == key.fingerprint
    os.chmod(person.private_key_path, 0o644)
    with pytest.raises(KeyFileError, match="may be read by others"):
        Examiner("ana", tmp_path / "ana-profile").key()


def test_a_key_with_a_passphrase_needs_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKSTATION_KEY_PASSPHRASE", "correct horse")
    made = Examiner("ana", tmp_path / "p").key()
    assert b"ENCRYPTED" in (tmp_path / "p" / "keys" / "examiner.key").read_bytes()
    assert Examiner("ana", tmp_path / "p").key().fingerprint == made.fingerprint
    monkeypatch.setenv("WORKSTATION_KEY_PASSPHRASE", "wrong")
    with pytest.raises(KeyFileError, match="wrong passphrase"):
        Examiner("ana", tmp_path / "p").key()
    monkeypatch.delenv("WORKSTATION_KEY_PASSPHRASE")
    with pytest.raises(KeyFileError, match="protected by a passphrase"):
        Examiner("ana", tmp_path / "p").key()
    asked = Examiner("ana", tmp_path / "p", passphrase=lambda path: "correct horse")
    assert asked.key().fingerprint == made.fingerprint  # the app's dialog


def test_the_creator_is_the_first_administrator_and_every_event_is_signed(
    gallery: Gallery,
) -> None:
    events = gallery.audit_events()
    assert [e.action for e in events] == ["genesis"]
    genesis = events[0]
    assert genesis.user == "examiner1" and len(genesis.details["gallery_id"]) == 32
    assert genesis.details["administrator"]["roles"] == [
        "administrator",
        "analyst",
        "enroller",
        "reviewer",
    ]
    assert genesis.key == gallery.examiner.key().fingerprint and genesis.signature
    report = gallery.verify_audit()
    assert report.intact and report.gallery_id == gallery.gallery_id


def test_a_typed_name_cannot_act_for_another_key(gallery: Gallery) -> None:
    """--user (a test hook) must be the name registered for the key that signs."""
    register(gallery.folder, "bob", ["analyst"])
    with Gallery(gallery.folder, user="bob") as pretending, pytest.raises(IdentityError) as err:
        pretending.require(AuditAction.SEARCH)
    assert "registered to 'examiner1'" in str(err.value)
    # Any spelling of one's own registered name is still oneself, and records the registered name.
    with Gallery(gallery.folder, user=" EXAMINER1") as same, same.transaction():
        event = same.audit(AuditAction.EXPORT, {"file": "x"}, case_id="C", purpose="p")
    assert event.user == "examiner1"


def test_an_unregistered_examiner_is_refused(gallery: Gallery) -> None:
    stranger = examiner("mallory")
    with (
        Gallery(gallery.folder, examiner=stranger) as other,
        pytest.raises(IdentityError) as err,
        other.transaction(),
    ):
        other.audit(AuditAction.EXPORT, {"file": "x"}, case_id="C", purpose="p")
    assert "mallory" in str(err.value) and "not registered" in str(err.value)
    assert [e.action for e in gallery.audit_events()] == ["genesis"]


def test_a_revoked_key_signs_nothing(gallery: Gallery) -> None:
    bob = register(gallery.folder, "bob", ["analyst"])
    revoke_examiner(gallery, "BOB", "left the unit")
    with Gallery(gallery.folder, examiner=bob) as revoked, pytest.raises(IdentityError) as err:
        revoked.require(AuditAction.SEARCH)
    assert "revoked" in str(err.value) and "left the unit" in str(err.value)
    assert gallery.verify_audit().intact


def test_a_role_refuses_an_act_naming_examiner_role_and_act(searched) -> None:
    gallery, _ = searched
    with open_as(gallery.folder, "alice") as alice, pytest.raises(NotPermittedError) as err:
        delete_subject(alice, "P-BIDEN", "tidy up")  # alice is an analyst only
    message = str(err.value)
    assert "examiner alice may not delete subjects" in message
    assert "administrator role" in message
    assert gallery.subject("P-BIDEN") is not None


def test_an_analyst_cannot_confirm_a_lead_without_the_reviewer_role(searched) -> None:
    gallery, search_id = searched
    with open_as(gallery.folder, "alice") as alice:
        lead = record_decision(alice, search_id, "P-OBAMA", Decision.POSSIBLE_LEAD, "scar")
    register(gallery.folder, "carol", ["analyst"])
    with open_as(gallery.folder, "carol") as carol, pytest.raises(NotPermittedError) as err:
        confirm_lead(carol, lead.id)
    assert "carol may not confirm another examiner's lead" in str(err.value)
    assert "reviewer role" in str(err.value)
    register(gallery.folder, "dave", ["reviewer"])
    with open_as(gallery.folder, "dave") as dave:
        confirmed = confirm_lead(dave, lead.id)
    assert confirmed.confirms == lead.id and confirmed.user == "dave"
    assert gallery.verify_audit().intact


def test_an_examiner_cannot_be_registered_twice_nor_a_key_for_two_names(gallery: Gallery) -> None:
    from workstation.audit.roles import Role
    from workstation.gallery.examiners import register_examiner

    bob = register(gallery.folder, "bob", ["analyst"])
    with pytest.raises(WorkstationError, match="already registered"):
        register_examiner(gallery, "Bob ", examiner("bob2").public_key_text(), {Role.ANALYST})
    with pytest.raises(WorkstationError, match="already registered for bob"):
        register_examiner(gallery, "robert", bob.public_key_text(), {Role.REVIEWER})


# ---------------------------------------------------------------------- the chain
def test_a_rewritten_event_with_recomputed_hashes_fails_on_its_signature(searched) -> None:
    gallery, _ = searched
    search_event = next(e for e in gallery.audit_events() if e.action == "search")
    _rewrite_from(gallery.folder, search_event.seq, {"user": "examiner1"}, signer=None)
    report = gallery.verify_audit()
    assert not report.intact and report.first_bad_seq == search_event.seq
    assert f"event {search_event.seq}: its signature is not" in (report.problem or "")


def test_a_rewrite_re_signed_with_the_insiders_own_key_fails(searched) -> None:
    """The insider holds a key of their own (registered or not): the rewritten event names
    alice but is signed by another key, or is signed by a key the chain never registered."""
    gallery, _ = searched
    search_event = next(e for e in gallery.audit_events() if e.action == "search")
    insider = examiner("mallory").key()
    _rewrite_from(gallery.folder, search_event.seq, {"purpose": "other"}, signer=insider)
    report = gallery.verify_audit()
    assert not report.intact and report.first_bad_seq == search_event.seq
    assert "which is not registered in this gallery" in (report.problem or "")


def test_an_event_signed_by_a_registered_key_under_another_name_fails(searched) -> None:
    gallery, _ = searched
    search_event = next(e for e in gallery.audit_events() if e.action == "search")
    administrator_key = gallery.examiner.key()
    _rewrite_from(gallery.folder, search_event.seq, {}, signer=administrator_key)
    report = gallery.verify_audit()
    assert not report.intact and report.first_bad_seq == search_event.seq
    assert "names examiner 'alice', but is signed by the key registered to 'examiner1'" in (
        report.problem or ""
    )


# ---------------------------------------------------------------------- every record covered
def test_an_edited_decision_row_is_named_with_its_event(searched) -> None:
    gallery, search_id = searched
    with open_as(gallery.folder, "alice") as alice:
        excluded = record_decision(alice, search_id, "P-BIDEN", Decision.EXCLUDED, "not him")
    event = gallery.audit_events()[-1]
    assert event.action == "decision" and gallery.verify_audit().intact
    edit_database(
        gallery.folder,
        "UPDATE decisions SET decision = 'possible_lead' WHERE id = ?",
        (excluded.id,),
    )
    report = gallery.verify_audit()
    assert not report.intact
    assert report.problem == (
        f"decision {excluded.id} differs from what event {event.seq} recorded: the row was "
        "edited outside the program"
    )


@pytest.mark.parametrize(
    ("sql", "words"),
    [
        ("UPDATE faces SET embedding = zeroblob(length(embedding)) WHERE id = 1", "face 1 differs"),
        ("UPDATE subjects SET name = 'Someone Else' WHERE id = 'P-OBAMA'", "subject 'P-OBAMA'"),
        ("UPDATE searches SET \"user\" = 'examiner1'", "search 1 differs"),
        ("UPDATE cases SET purpose = 'fishing'", "case 'C-1' differs"),
        ("DELETE FROM decisions", "is missing"),
        (
            "INSERT INTO cases (id, purpose, created_at, created_by) VALUES ('C-9', 'x', 't', 'e')",
            "case 'C-9' was not written by any audited act",
        ),
        ("UPDATE examiners SET roles = '[\"administrator\"]'", "examiner"),
    ],
)
def test_rows_edited_added_or_removed_outside_the_program_are_named(
    searched, sql: str, words: str
) -> None:
    gallery, search_id = searched
    with open_as(gallery.folder, "alice") as alice:
        record_decision(alice, search_id, "P-BIDEN", Decision.EXCLUDED, "not him")
    assert gallery.verify_audit().intact
    edit_database(gallery.folder, sql)
    report = gallery.verify_audit()
    assert not report.intact and words in (report.problem or ""), report.problem


def test_a_row_removed_by_an_audited_deletion_verifies_as_removed(searched) -> None:
    """The convention for deletion, merge and retention: the deleting event lists each row it
    removed with no hash; verify then expects the row to be gone."""
    gallery, _ = searched
    delete_subject(gallery, "P-BIDEN", "court order 12/2026")
    event = gallery.audit_events()[-1]
    removed = {(table, row_id) for table, row_id, digest in gallery.event_rows(event.seq)}
    assert ("subjects", "P-BIDEN") in removed
    assert all(digest is None for _, _, digest in gallery.event_rows(event.seq))
    report = gallery.verify_audit()
    assert report.intact, report.problem
    # Putting the subject back by hand is caught.
    edit_database(
        gallery.folder,
        "INSERT INTO subjects (id, name, created_at, created_by) VALUES ('P-BIDEN', 'x', 't', 'e')",
    )
    report = gallery.verify_audit()
    assert not report.intact
    assert f"event {event.seq} removed it" in (report.problem or "")


def test_edited_row_hashes_break_the_event(searched) -> None:
    gallery, _ = searched
    search_event = next(e for e in gallery.audit_events() if e.action == "search")
    edit_database(
        gallery.folder,
        "UPDATE audit_rows SET sha256 = ? WHERE seq = ? AND tbl = 'searches'",
        ("0" * 64, search_event.seq),
    )
    report = gallery.verify_audit()
    assert not report.intact and report.first_bad_seq == search_event.seq
    assert "row hashes stored with it do not match" in (report.problem or "")


# ---------------------------------------------------------------------- witnesses
def _export(folder: Path, examiner_obj: Examiner | None = None, n: int = 0) -> None:
    """One small audited act (an export record) by the test's own examiner or another."""
    with Gallery(folder, examiner=examiner_obj) as gallery, gallery.transaction():
        gallery.audit(AuditAction.EXPORT, {"file": f"r{n}.pdf"}, case_id="C-1", purpose="p")


def _verify(folder: Path, head: tuple[int, str] | None = None):
    with Gallery(folder, read_only=True) as gallery:
        return gallery.verify_audit(head=head)


def test_every_act_appends_its_signed_head_to_the_examiners_witness(tmp_path: Path) -> None:
    from workstation.audit.witness import read_witnesses

    folder = tmp_path / "g"
    for n in range(3):
        _export(folder, n=n)
    with Gallery(folder, read_only=True) as gallery:
        lines, _ = read_witnesses([gallery.examiner.witness_dir])
        head = gallery.audit_head()
    entries = [line.entry for line in lines]
    assert [e.seq for e in entries if e] == [1, 2, 3, 4]  # genesis and three acts
    assert entries[-1] is not None and entries[-1].hash == head[1]
    assert all(e is not None and e.signature_ok() for e in entries)
    report = _verify(folder)
    assert report.intact and report.witness_entries == 4 and report.witness_files == 1


def test_a_rollback_to_an_earlier_copy_of_the_gallery_folder_fails(tmp_path: Path) -> None:
    import shutil

    folder, saved = tmp_path / "g", tmp_path / "saved"
    _export(folder, n=1)
    shutil.copytree(folder, saved)
    _export(folder, n=2)  # the search the insider wants erased
    _export(folder, n=3)
    shutil.rmtree(folder)
    shutil.copytree(saved, folder)
    report = _verify(folder)
    assert not report.intact
    assert "saw event 3" in (report.problem or "") and "chain ends at event 2" in (
        report.problem or ""
    )
    assert "rolled back" in (report.problem or "")


def test_a_history_rewritten_and_re_signed_with_a_registered_key_is_a_fork(tmp_path: Path) -> None:
    """The administrator holds their own key: rewriting their own last act and re-signing it
    passes every signature check, but not the witness of the head."""
    folder = tmp_path / "g"
    _export(folder, n=1)
    _export(folder, n=2)
    with Gallery(folder, read_only=True) as gallery:
        key = gallery.examiner.key()
    _rewrite_from(folder, 3, {"details": {"file": "innocent.pdf"}}, signer=key)
    report = _verify(folder)
    assert not report.intact
    assert "saw event 3 with hash" in (report.problem or "") and "fork" in (report.problem or "")
    assert _verify(folder).first_bad_seq is None  # the chain itself holds together


def test_a_forged_history_made_under_another_profile_at_the_same_folder_fails(
    tmp_path: Path,
) -> None:
    import shutil

    folder = tmp_path / "g"
    _export(folder, n=1)
    shutil.rmtree(folder)
    mallory = examiner("mallory")
    _export(folder, mallory, n=1)  # a whole new history: mallory is its administrator
    report = _verify(folder)  # verified by the real examiner, with their witness
    assert not report.intact
    assert "saw another gallery" in (report.problem or "")
    assert "was put in its place" in (report.problem or "")


def test_a_forged_history_reusing_the_gallery_id_fails_on_the_pinned_administrator_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    from workstation.gallery import store

    folder = tmp_path / "g"
    _export(folder, n=1)
    with Gallery(folder, read_only=True) as gallery:
        real_id = gallery.gallery_id
    shutil.rmtree(folder)
    monkeypatch.setattr(store, "new_gallery_id", lambda: real_id)
    _export(folder, examiner("mallory"), n=1)
    report = _verify(folder)
    assert not report.intact
    assert "another genesis event or first administrator key" in (report.problem or "")


def test_an_act_committed_while_verify_runs_is_not_a_rollback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another examiner's act (or a read the app records) may commit while `audit verify` runs.
    Its head is witnessed after its commit, so verify reads the witnesses before the chain: the
    act lands between the two reads here, and the chain read afterwards holds it."""
    import workstation.gallery.audit_trail as audit_trail

    folder = tmp_path / "g"
    _export(folder, n=1)
    original = audit_trail.read_witnesses

    def witnesses_then_another_act(folders: list[Path]) -> tuple[list, list[str]]:
        lines = original(folders)
        _export(folder, n=2)  # commits and witnesses event 2 before the chain is read
        return lines

    monkeypatch.setattr(audit_trail, "read_witnesses", witnesses_then_another_act)
    with Gallery(folder) as gallery:
        report = gallery.verify_audit()
    assert report.intact, report.problem
    assert report.head_seq == max(
        line.entry.seq for line in original([gallery.examiner.witness_dir])[0]
    )


def test_a_head_from_a_report_is_checked(tmp_path: Path) -> None:
    folder = tmp_path / "g"
    _export(folder, n=1)
    with Gallery(folder, read_only=True) as gallery:
        seq, digest = gallery.audit_head()
    _export(folder, n=2)
    assert _verify(folder, head=(seq, digest)).intact
    wrong = _verify(folder, head=(seq, "ab" * 32))
    assert not wrong.intact and "fork" in (wrong.problem or "")
    ahead = _verify(folder, head=(seq + 5, digest))
    assert not ahead.intact and "rolled back" in (ahead.problem or "")


def test_the_agency_witness_folder_catches_a_rollback_of_another_examiners_acts(
    tmp_path: Path,
) -> None:
    import shutil

    from workstation.gallery.examiners import set_witness_folder

    folder, saved, agency = tmp_path / "g", tmp_path / "saved", tmp_path / "agency-share"
    agency.mkdir()
    with Gallery(folder) as gallery:
        set_witness_folder(gallery, str(agency))
    bob = register(folder, "bob", ["analyst"])
    shutil.copytree(folder, saved)
    _export(folder, bob, n=1)  # bob's act: witnessed in bob's profile and the agency folder
    shutil.rmtree(folder)
    shutil.copytree(saved, folder)
    report = _verify(folder)  # the administrator's own witness never saw bob's act
    assert not report.intact
    assert str(agency) in (report.problem or "") and "rolled back" in (report.problem or "")


# ---------------------------------------------------------------------- EU AI Act log, reports
def test_a_search_records_what_the_eu_ai_act_asks_and_the_case_its_authorisation(
    gallery: Gallery, engine, photo_paths: dict[str, Path]
) -> None:
    from workstation.domain import CaseAuthorisation
    from workstation.gallery.cases import authorise_case

    drain(enroll(gallery, engine, items_for_subject("P-OBAMA", [photo_paths["obama"]])))
    approval = CaseAuthorisation("J. Prosecutor", "2026-05-01", "order 17/2026")
    with open_as(gallery.folder, "alice", ["analyst"]) as alice:
        result = search_image(
            alice,
            engine,
            load_image(photo_paths["obama2"]),
            "C-7",
            "robbery",
            authorisation=approval,
        )
        lead = record_decision(alice, result.search_id, "P-OBAMA", Decision.POSSIBLE_LEAD, "x")
    assert CaseAuthorisation.from_case_row(gallery.case("C-7")) == approval
    record = gallery.search_record(result.search_id)
    line = record.to_dict()
    assert line["started_at"] <= line["ended_at"]
    assert line["gallery"]["id"] == gallery.gallery_id
    assert line["gallery"]["folder"] == str(gallery.folder.resolve())
    assert line["gallery"]["faces"] == 1 and line["gallery"]["model_id"] == str(engine.model)
    assert line["probe"] == str(photo_paths["obama2"]) and len(line["sha256"]) == 64
    assert line["verified_by"] == []
    with open_as(gallery.folder, "bob", ["reviewer"]) as bob:
        confirm_lead(bob, lead.id)
    assert gallery.search_record(result.search_id).verified_by == ["bob"]
    # Corrected later, in an audited act.
    corrected = CaseAuthorisation("J. Prosecutor", "2026-05-02", "order 18/2026")
    authorise_case(gallery, "C-7", corrected)
    assert CaseAuthorisation.from_case_row(gallery.case("C-7")) == corrected
    assert gallery.audit_events()[-1].action == "case_authorise"
    assert gallery.verify_audit().intact


def test_a_bundle_is_built_only_from_records_that_verify_and_says_so(searched) -> None:
    from workstation.reports.bundle import RECORDS_LEFT_OUT, RECORDS_VERIFIED, build_case_bundle

    gallery, search_id = searched
    with open_as(gallery.folder, "alice") as alice:
        excluded = record_decision(alice, search_id, "P-BIDEN", Decision.EXCLUDED, "not him")
    bundle = build_case_bundle(gallery, "C-1")
    assert bundle["audit"]["records_statement"] == RECORDS_VERIFIED
    assert bundle["audit"]["head"] == f"{bundle['audit']['head_seq']}:{bundle.head_hash}"
    assert [s["search_id"] for s in bundle["searches"]] == [search_id]
    edit_database(
        gallery.folder,
        "UPDATE decisions SET decision = 'possible_lead' WHERE id = ?",
        (excluded.id,),
    )
    bundle = build_case_bundle(gallery, "C-1")
    statement = bundle["audit"]["records_statement"]
    assert statement.startswith(RECORDS_LEFT_OUT)
    assert f"search {search_id}" in statement and f"decision {excluded.id} differs" in statement
    assert bundle["searches"] == [] and not bundle["audit"]["records_verified"]


def test_a_backup_verified_where_it_lies_is_behind_not_rolled_back(tmp_path: Path) -> None:
    import shutil

    folder, backup = tmp_path / "g", tmp_path / "backup"
    _export(folder, n=1)
    shutil.copytree(folder, backup)
    _export(folder, n=2)
    report = _verify(backup)
    assert report.intact and report.witnessed_elsewhere == 3
