"""`workstation cases`: the list (text and JSON), close / reopen / archive, and the refusals an
archived case gives on the command line (issue 15 item 4)."""

from __future__ import annotations

import io
import json
from pathlib import Path

from workstation.cli import main


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_cases_list_close_archive_and_refusals(tmp_path: Path, photo_paths) -> None:
    g = ["--gallery", str(tmp_path / "g")]
    code, _, err = run(*g, "enroll", "--subject", "P-OBAMA", str(photo_paths["obama"]))
    assert code == 0, err
    search = [*g, "search", "--case", "C-9", "--purpose", "burglary", "--json"]
    code, out, err = run(
        *search,
        "--authorised-by",
        "J. Prosecutor",
        "--authorised-at",
        "2026-05-01",
        "--authorisation",
        "order 17/2026",
        str(photo_paths["obama2"]),
    )
    assert code == 0, err
    search_id = json.loads(out)["search_id"]
    code, out, err = run(
        *g, "decide", "--search", str(search_id), "--subject", "P-OBAMA", "--decision",
        "possible-lead",
    )  # fmt: skip
    assert code == 0, err

    sup = ["--case", "SUPERVISION-2026", "--purpose", "case supervision"]
    code, out, err = run(*g, "cases", "--json")
    assert code == 1 and out == "" and "listing cases needs a case number" in err
    code, out, err = run(*g, "cases", "--json", *sup)
    assert code == 0, err
    (line,) = [json.loads(text) for text in out.splitlines()]
    assert line["case_id"] == "C-9" and line["status"] == "open"
    assert (line["searches"], line["leads"], line["confirmations"]) == (1, 1, 0)
    assert line["authorisation"] == {
        "by": "J. Prosecutor",
        "at": "2026-05-01",
        "reference": "order 17/2026",
    }
    assert line["retain_until"] is None and line["past_retention"] is False
    code, out, _ = run(*g, "cases", "list", *sup)
    assert code == 0 and "C-9\topen\tburglary" in out and "1 case(s)" in out

    code, out, err = run(*g, "cases", "close", "C-9", "--reason", "x", "--retain-until", "2020-1-1")
    assert code != 0 and "not a date" in err
    code, out, err = run(
        *g, "cases", "close", "C-9", "--reason", "charged", "--retain-until", "2020-01-01"
    )
    assert code == 0 and "closed" in out, err
    code, out, _ = run(*g, "cases", "list", "--past-retention", "--json", *sup)
    assert json.loads(out)["past_retention"] is True and json.loads(out)["status"] == "closed"
    code, out, _ = run(*g, "cases", sup[0], sup[1], "list", *sup[2:])
    assert "PAST RETENTION" in out and "1 past their retention date" in out

    code, out, err = run(*g, "cases", "archive", "C-9", "--reason", "verdict given")
    assert code == 0 and "read-only" in out and "2020-01-01" in out, err
    code, _, err = run(*search, str(photo_paths["obama2"]))
    assert code != 0 and "archived" in err and "Traceback" not in err
    code, _, err = run(
        *g, "decide", "--search", str(search_id), "--subject", "P-OBAMA", "--decision", "excluded"
    )
    assert code != 0 and "archived" in err
    code, _, err = run(*g, "cases", "reopen", "C-9", "--reason", "try")
    assert code != 0 and "archived" in err
    # An export is a read: allowed, and recorded on the case.
    code, out, err = run(*g, "export", "--case", "C-9", "--out", str(tmp_path / "c9.json"))
    assert code == 0, err
    # Reading the log for the archived case is a recorded read: allowed too.
    code, out, err = run(*g, "audit", "show", "--case", "C-9", "--purpose", "review", "--json")
    assert code == 0, err
    actions = [json.loads(text)["action"] for text in out.splitlines()]
    assert [a for a in actions if a != "view"][-3:] == ["case_close", "case_archive", "export"]
    code, out, _ = run(*g, "audit", "verify")
    assert code == 0, out
