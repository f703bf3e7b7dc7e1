"""The one exception tree of xunjian. Every error the package raises on purpose is here.

    XunjianError
     ├── ConfigurationError (ValueError)     settings, mappings, model cards that make no sense
     ├── InputError (ValueError)             bad input from a user: image, manifest, track, key
     │    ├── MetadataError                  EXIF / XMP / GPS that cannot be read or is absurd
     │    └── UnsafeKeyError                 an object key or path that escapes its prefix
     ├── StorageError (OSError)              object store unreachable, refused or inconsistent
     │    ├── ObjectNotFoundError (FileNotFoundError)
     │    └── StorageUnavailableError        cannot reach it / it answers 5xx: wait and retry
     ├── DatabaseError                       the database refused or is unreachable
     │    └── DatabaseUnavailableError       connection refused or lost: wait and retry
     ├── DetectorError                       a model that cannot load or run
     ├── GeoreferenceError                   a pixel that cannot be placed on the ground
     ├── IssueTransitionError (ValueError)   an issue status change the lifecycle does not allow
     └── CaseSystemError                     the case system refused or is unreachable
          ├── CaseRefusedError           it refused one message (4xx): resending cannot help
          └── SignatureError             a case-platform callback with a missing or bad signature

Messages name the thing (file, key, field) and say what was expected and what was found.
This module imports nothing from the package, so every layer may import it.
"""

from __future__ import annotations


class XunjianError(Exception):
    """Root of every error xunjian raises on purpose."""


class ConfigurationError(XunjianError, ValueError):
    """A setting or configuration file that cannot be used."""


class InputError(XunjianError, ValueError):
    """Bad input: the message names the input and the reason."""

    def __init__(self, message: str, *, source: str | None = None) -> None:
        self.source = source
        super().__init__(f"{source}: {message}" if source else message)
        self.reason = message


class MetadataError(InputError):
    """Photo metadata (EXIF, XMP, GPS) that is missing, malformed, hostile or absurd."""


class UnsafeKeyError(InputError):
    """An object key or file path that would escape its prefix (``..``, absolute, control chars)."""


class StorageError(XunjianError, OSError):
    """The object store or a local file store failed."""


class ObjectNotFoundError(StorageError, FileNotFoundError):
    """An object key that does not exist in the store."""


class StorageUnavailableError(StorageError):
    """The object store cannot be reached or answers 5xx: transient, worth waiting for."""


class DatabaseError(XunjianError):
    """The database refused an operation or is unreachable."""


class DatabaseUnavailableError(DatabaseError):
    """The database connection was refused or lost: transient, worth waiting for."""


class DetectorError(XunjianError):
    """A detector model that cannot be loaded or run."""


class GeoreferenceError(XunjianError):
    """A frame or pixel that cannot be placed on the ground, with the reason."""


class IssueTransitionError(XunjianError, ValueError):
    """A status change the lifecycle does not allow (e.g. ``rejected`` → ``published``)."""


class CaseSystemError(XunjianError):
    """The case system (Open311, webhook) refused a request or is unreachable."""


class CaseRefusedError(CaseSystemError):
    """The case system refused a message for good (a 4xx answer): retrying cannot help.

    ``status`` is the HTTP status; ``errors`` the server's ``[{code, description}]`` list.
    """

    def __init__(
        self, message: str, *, status: int | None = None, errors: list[dict[str, str]] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.errors = errors or []


class SignatureError(CaseSystemError):
    """A case-platform callback whose HMAC signature is missing, malformed or wrong."""
