"""Errors that reach a user: each names the file or record and the reason, in plain words."""

from __future__ import annotations


class WorkstationError(Exception):
    """Base class for failures a user should read (never shown as a traceback)."""


class ImageError(WorkstationError):
    """An image could not be read, or is not safe to decode."""


class NoFaceError(WorkstationError):
    """No face was found where one was needed."""


class ModelError(WorkstationError):
    """A model file is missing, altered, or cannot be loaded."""


class ModelMismatchError(WorkstationError):
    """A gallery was built with one model and is being used with another."""


class GalleryError(WorkstationError):
    """The gallery folder or its database cannot be used as asked."""


class GalleryBusyError(GalleryError):
    """Another process held the gallery's write lock for longer than the busy timeout."""


class CaseRequiredError(WorkstationError):
    """A search was asked for without a case number or purpose."""


class CaseStatusError(WorkstationError):
    """An act refused because of its case's status (closed: reopen it first; archived: the case
    is read-only for good)."""


class AuditError(WorkstationError):
    """The audit log could not be written or read."""


class CancelledError(WorkstationError):
    """Long work was cancelled by the user."""


class CalibrationError(WorkstationError):
    """A score calibration (impostor score table) is missing, altered or cannot be computed."""


class QualityGateError(WorkstationError):
    """A poor-quality probe was to be searched without an examiner's note saying why."""

    def __init__(self, message: str, reasons: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.reasons = reasons


class KeyFileError(WorkstationError):
    """An examiner's key file cannot be read, or a key is not what it claims to be."""


class IdentityError(WorkstationError):
    """The examiner acting is not registered in the gallery, or is not who they claim to be."""


class NotPermittedError(IdentityError):
    """A registered examiner asked for an act their roles do not allow."""
