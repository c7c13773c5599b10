"""Text from outside the program shown as text, never as markup.

Subject names, case numbers, purposes, examiner names, notes and file names come from users,
manifests and other examiners. Qt shows a QLabel, a tooltip or a message box as rich text
whenever the string merely looks like HTML (Qt.mightBeRichText), so a subject named
"<b>CONFIRMED MATCH</b>" would show in bold without its tags, and "<s></s>bob" as "bob".
Every such string is therefore shown through one of these:

- `plain_label` / `make_plain`: a QLabel that never interprets markup (most labels);
- `escaped`: for the few labels that mix our own markup (a bold caption) with stored values;
  every interpolated value goes through it;
- `tooltip`: a tooltip (widget or item view) that shows its text literally, line breaks kept;
- `show_message`: a message box whose text is plain.

Item-view cells (DisplayRole), window titles, buttons, list and combo-box items and the status
bar always draw plain text in Qt: they need none of this.
"""

from __future__ import annotations

import html

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QMessageBox, QWidget


def escaped(value: object) -> str:
    """`value` as HTML text (None as ""), line breaks kept: for labels that mix markup with
    stored values."""
    text = "" if value is None else str(value)
    return html.escape(text, quote=True).replace("\n", "<br>")


def plain_label(text: str = "", parent: QWidget | None = None) -> QLabel:
    """A QLabel that shows its text exactly as given, whatever it holds."""
    label = QLabel(parent)
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setText(text)
    return label


def make_plain(*labels: QLabel) -> None:
    """Make existing labels show their text exactly as given."""
    for label in labels:
        label.setTextFormat(Qt.TextFormat.PlainText)


def tooltip(text: str | None) -> str:
    """A tooltip showing `text` literally. Qt takes a tooltip for rich text when it looks like
    HTML; wrapping the escaped text in a paragraph makes it always rich, so the text is always
    shown, tags included, line breaks kept."""
    if not text:
        return ""
    return f"<p style='white-space:pre-wrap'>{html.escape(text, quote=False)}</p>"


def show_message(
    parent: QWidget | None,
    title: str,
    text: str,
    icon: QMessageBox.Icon = QMessageBox.Icon.Information,
) -> None:
    """A modal message box whose text is plain (it names files, cases, subjects)."""
    box = QMessageBox(icon, title, text, QMessageBox.StandardButton.Ok, parent)
    box.setTextFormat(Qt.TextFormat.PlainText)
    box.exec()
