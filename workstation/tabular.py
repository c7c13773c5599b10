"""Read the tables users give us (enrolment manifests, compare pairs): the bytes and the layout
only, never what the columns mean.

What spreadsheet programs write, and what is read here:

- UTF-8, with or without a byte-order mark (Excel's "CSV UTF-8", LibreOffice, scripts);
- UTF-16 with a byte-order mark (Excel's "Unicode Text": tab-separated), and UTF-16 without a
  mark when the header shows it unmistakably (every other byte zero);
- fields separated by commas, tabs or semicolons (Excel in many European locales saves "CSV"
  with semicolons), detected from the header line.

Anything else (a Windows or Mac code page, UTF-32) is refused with the line of the first byte
that is not UTF-8 and the way to save the file again: guessing a code page would silently
change letters in names (0xE9 is "é" in Windows-1252, "é" in Windows-1250, "й" in
Windows-1251), and a name in the audit log must be the name the agency wrote.
"""

from __future__ import annotations

import codecs
import csv
import io
from dataclasses import dataclass
from pathlib import Path

from workstation.errors import WorkstationError

DELIMITERS = {",": "comma", "\t": "tab", ";": "semicolon"}
SAVE_AS = (
    'save it again as UTF-8 (Excel: "CSV UTF-8 (Comma delimited)"; LibreOffice: character set '
    '"Unicode (UTF-8)") or as Excel\'s "Unicode Text"'
)
# Larger than any manifest an agency writes (a million rows is about 100 MB); the file is read
# whole, so a wrong file given by mistake (a video) is refused instead of filling memory.
MAX_TABLE_BYTES = 1 << 30


@dataclass(frozen=True)
class TableRow:
    """One data row: its line in the file and its values by (stripped) column name."""

    line: int
    values: dict[str, str]
    # The row has more non-blank fields than the header has columns (they are not in `values`).
    too_many_fields: bool = False


@dataclass(frozen=True)
class Table:
    path: Path
    columns: list[str]
    rows: list[TableRow]
    encoding: str  # in words, e.g. "UTF-16 (little-endian, with byte-order mark)"
    delimiter: str

    def where(self, row: TableRow) -> str:
        """How messages name a row: "<file name> line N"."""
        return f"{self.path.name} line {row.line}"


def read_table(path: Path, what: str = "file") -> Table:
    """Read a delimited text file with a header line.

    Args:
        path: the file.
        what: what the file is, for messages ("manifest", "pairs file").

    Returns:
        The columns (stripped) and every row that holds at least one non-blank field. Values are
        stripped; a missing trailing field is "".

    Raises:
        WorkstationError: naming the file (and line) when it cannot be read, is not text in an
            encoding read here (with the encoding to save as), or is not well-formed.
    """
    path = Path(path)
    try:
        if path.stat().st_size > MAX_TABLE_BYTES:
            raise WorkstationError(
                f"{path}: the {what} is {path.stat().st_size / 2**20:.0f} MB, too large for a "
                "table of photos (over 1 GB)"
            )
        data = path.read_bytes()
    except OSError as exc:
        raise WorkstationError(f"{path}: cannot open the {what} ({exc.strerror or exc})") from exc
    text, encoding = decode_text(data, path, what)
    first_line = text.split("\n", 1)[0]
    delimiter = detect_delimiter(first_line)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = next(reader, None)
        columns = [c.strip() for c in header or []]
        rows: list[TableRow] = []
        for fields in reader:
            if not any(field.strip() for field in fields):
                continue  # blank line (or a line of empty fields, as spreadsheets write)
            values = {
                column: (fields[i].strip() if i < len(fields) else "")
                for i, column in enumerate(columns)
                if column
            }
            extra = any(field.strip() for field in fields[len(columns) :])
            rows.append(TableRow(reader.line_num, values, extra))
    except csv.Error as exc:
        raise WorkstationError(
            f"{path} line {reader.line_num}: not a readable {what} ({exc})"
        ) from exc
    return Table(path, columns, rows, encoding, delimiter)


def decode_text(data: bytes, path: Path, what: str = "file") -> tuple[str, str]:
    """Decode a user's text file: (text, the encoding in words)."""
    if data.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        raise WorkstationError(
            f"{path}: the {what} is UTF-32 text, which is not read here; {SAVE_AS}"
        )
    for bom, codec, name in (
        (codecs.BOM_UTF8, "utf-8", "UTF-8 (with byte-order mark)"),
        (codecs.BOM_UTF16_LE, "utf-16-le", "UTF-16 (little-endian, with byte-order mark)"),
        (codecs.BOM_UTF16_BE, "utf-16-be", "UTF-16 (big-endian, with byte-order mark)"),
    ):
        if data.startswith(bom):
            return _decode(data[len(bom) :], codec, name, path, what)
    bare_utf16 = _bare_utf16(data)
    if bare_utf16 is not None:
        codec, name = bare_utf16
        return _decode(data, codec, name, path, what)
    return _decode(data, "utf-8", "UTF-8", path, what)


def _bare_utf16(data: bytes) -> tuple[str, str] | None:
    """UTF-16 without a byte-order mark, recognised from an ASCII header: every other byte of
    the first line is zero (UTF-8 text never holds a zero byte)."""
    line_end = data.find(b"\n", 0, 400)
    header_bytes = line_end if line_end >= 0 else min(len(data), 400)
    head = data[: header_bytes - header_bytes % 2]
    if len(head) < 4:
        return None
    even, odd = head[0::2], head[1::2]
    if odd.count(0) == len(odd) and even.count(0) == 0:
        return "utf-16-le", "UTF-16 (little-endian, no byte-order mark)"
    if even.count(0) == len(even) and odd.count(0) == 0:
        return "utf-16-be", "UTF-16 (big-endian, no byte-order mark)"
    return None


def _decode(data: bytes, codec: str, name: str, path: Path, what: str) -> tuple[str, str]:
    try:
        return data.decode(codec), name
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n" if codec == "utf-8" else "\n".encode(codec)) + 1
        bad = data[exc.start : exc.start + 1].hex().upper()
        if codec == "utf-8":
            hint = (
                "it is probably in a Windows or Mac code page (such as Windows-1252), which "
                "cannot be read without guessing letters"
            )
            raise WorkstationError(
                f"{path} line {line}: the {what} is not UTF-8 text (byte 0x{bad} is not valid "
                f"UTF-8); {hint}: {SAVE_AS}"
            ) from exc
        raise WorkstationError(
            f"{path} line {line}: the {what} is not valid {name} text ({exc.reason}); {SAVE_AS}"
        ) from exc


def detect_delimiter(header_line: str) -> str:
    """The separator of a header line: tab, comma or semicolon, whichever occurs most outside
    quotes (a header of one column: comma)."""
    counts = dict.fromkeys(DELIMITERS, 0)
    quoted = False
    for char in header_line:
        if char == '"':
            quoted = not quoted
        elif not quoted and char in counts:
            counts[char] += 1
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","
