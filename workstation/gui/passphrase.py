"""The passphrase dialog: unlocks an examiner key protected by a passphrase when the app starts.

Workers sign events with the key; a dialog can only be shown on the GUI thread, so the key is
loaded here once, before any worker runs, and kept in the examiner object for the session.
"""

from __future__ import annotations

from PySide6.QtWidgets import QInputDialog, QLineEdit, QWidget

from workstation.errors import KeyFileError
from workstation.identity import Examiner

ATTEMPTS = 3


def unlock_examiner_key(examiner: Examiner, parent: QWidget | None = None) -> str | None:
    """Load the examiner's key (made on first use, unprotected unless the passphrase variable is
    set), asking for its passphrase when it is protected. Returns a problem in words, or None.

    Without a usable key the app still opens (to read), and every act says why it is refused.
    """
    answers: list[str | None] = []

    def ask(key_path: str) -> str | None:
        text, accepted = QInputDialog.getText(
            parent,
            "Examiner key",
            f"Your examiner key is protected by a passphrase.\n{key_path}\n\nPassphrase:",
            QLineEdit.EchoMode.Password,
        )
        answer = text if accepted and text else None
        answers.append(answer)
        return answer

    examiner.passphrase = ask
    try:
        for _attempt in range(ATTEMPTS):
            try:
                examiner.key()
                return None
            except KeyFileError as exc:
                if answers and answers[-1] is None:  # the examiner cancelled
                    return f"Examiner key not unlocked: {exc}"
                problem = str(exc)
        return f"Examiner key not unlocked: {problem}"
    finally:
        examiner.passphrase = None  # workers must never ask
