"""Reading manifests and pairs files as spreadsheet programs save them (real files on disk)."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from workstation.errors import WorkstationError
from workstation.gallery.enroll import read_manifest
from workstation.tabular import read_table

NAMES = ["José Müller", "Ольга Петрова", "李小龍", "Zoë O'Brien, Jr."]


def _rows(delimiter: str) -> str:
    lines = [delimiter.join(["subject_id", "image", "name", "booking_no"])]
    for number, name in enumerate(NAMES, start=1):
        quoted = f'"{name}"' if delimiter in name else name
        lines.append(delimiter.join([f"S-{number}", f"p{number}.jpg", quoted, f"B-{number}"]))
    # Excel writes Windows line endings.
    return "\r\n".join(lines) + "\r\n"


@pytest.mark.parametrize(
    "encoding,bom,delimiter,said",
    [
        ("utf-8", b"", ",", "UTF-8"),
        ("utf-8", codecs.BOM_UTF8, ",", "UTF-8 (with byte-order mark)"),
        # Excel "Unicode Text": UTF-16 little-endian with a byte-order mark, tab-separated.
        ("utf-16-le", codecs.BOM_UTF16_LE, "\t", "UTF-16 (little-endian, with byte-order mark)"),
        ("utf-16-be", codecs.BOM_UTF16_BE, "\t", "UTF-16 (big-endian, with byte-order mark)"),
        ("utf-16-le", b"", "\t", "UTF-16 (little-endian, no byte-order mark)"),
        ("utf-8", b"", "\t", "UTF-8"),
        # Excel "CSV" in locales whose decimal separator is a comma.
        ("utf-8", codecs.BOM_UTF8, ";", "UTF-8 (with byte-order mark)"),
    ],
)
def test_spreadsheet_encodings_and_separators_are_read(
    tmp_path: Path, encoding: str, bom: bytes, delimiter: str, said: str
) -> None:
    path = tmp_path / "manifest.csv"
    path.write_bytes(bom + _rows(delimiter).encode(encoding))
    table = read_table(path, "manifest")
    assert table.encoding == said
    assert table.delimiter == delimiter
    assert table.columns == ["subject_id", "image", "name", "booking_no"]
    assert [row.values["name"] for row in table.rows] == NAMES
    assert [row.line for row in table.rows] == [2, 3, 4, 5]

    items, bad = read_manifest(path)
    assert bad == []
    assert [item.name for item in items] == NAMES
    assert [item.image for item in items] == [tmp_path / f"p{n}.jpg" for n in range(1, 5)]
    assert items[0].attributes == {"booking_no": "B-1"}
    assert items[2].source == "manifest.csv line 4"


def test_windows_code_page_is_refused_with_the_encoding_to_save_as(tmp_path: Path) -> None:
    path = tmp_path / "ansi.csv"
    path.write_bytes("subject_id,image,name\nS-1,a.jpg,Ann\nS-2,b.jpg,José\n".encode("cp1252"))
    with pytest.raises(WorkstationError) as raised:
        read_manifest(path)
    message = str(raised.value)
    assert message.startswith(f"{path} line 3: the manifest is not UTF-8 text (byte 0xE9")
    assert "Windows" in message and "CSV UTF-8" in message and "Unicode Text" in message


def test_utf32_is_refused_with_the_encoding_to_save_as(tmp_path: Path) -> None:
    path = tmp_path / "wide.csv"
    path.write_bytes(codecs.BOM_UTF32_LE + "subject_id,image\n".encode("utf-32-le"))
    with pytest.raises(WorkstationError, match=r"wide\.csv: the manifest is UTF-32 .*UTF-8"):
        read_manifest(path)


def test_damaged_utf16_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "cut.txt"
    # A lone high surrogate on the second line.
    data = codecs.BOM_UTF16_LE + "subject_id\timage\nS-1\t".encode("utf-16-le") + b"\x00\xd8"
    path.write_bytes(data + "a.jpg\n".encode("utf-16-le"))
    with pytest.raises(
        WorkstationError, match=r"cut\.txt line 2: the manifest is not valid UTF-16"
    ):
        read_manifest(path)


def test_quoted_fields_blank_lines_and_extra_fields(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text(
        'subject_id,image,name\n"S-1","a, b.jpg","Doe, Jane"\n\n,,\nS-2,c.jpg,Ann,surplus\n'
        "S-3,d.jpg,Bob,,\n",
        encoding="utf-8",
    )
    table = read_table(path, "manifest")
    assert [row.line for row in table.rows] == [2, 5, 6]
    assert table.rows[0].values == {"subject_id": "S-1", "image": "a, b.jpg", "name": "Doe, Jane"}
    assert table.rows[1].too_many_fields
    assert not table.rows[2].too_many_fields  # trailing empty fields are not data
    items, bad = read_manifest(path)
    assert [item.subject_id for item in items] == ["S-1", "S-3"]
    assert [(b.source, b.message) for b in bad] == [
        ("m.csv line 5", "the row has more fields than the header")
    ]


def test_missing_columns_say_how_the_file_was_read(tmp_path: Path) -> None:
    path = tmp_path / "m.txt"
    path.write_bytes(codecs.BOM_UTF16_LE + "id\tphoto\n1\ta.jpg\n".encode("utf-16-le"))
    with pytest.raises(WorkstationError) as raised:
        read_manifest(path)
    assert "missing: image, subject_id; found: id, photo" in str(raised.value)
    assert "UTF-16 (little-endian, with byte-order mark), separated by tabs" in str(raised.value)


def test_unreadable_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(WorkstationError, match=r"nothere\.csv: cannot open the manifest"):
        read_manifest(tmp_path / "nothere.csv")
    path = tmp_path / "bad.csv"
    path.write_text('subject_id,image\nS-1,"a.jpg\n', encoding="utf-8")
    with pytest.raises(WorkstationError, match=r"bad\.csv line \d: not a readable manifest"):
        read_manifest(path)
