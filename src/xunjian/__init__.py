"""xunjian (巡检): AI 立体巡检 — drone and patrol-vehicle imagery to one case per real problem.

The public names are re-exported here; ``tests/unit/test_public_api.py`` fails when they drift.
"""

from xunjian.errors import (
    CaseRefusedError,
    CaseSystemError,
    ConfigurationError,
    DatabaseError,
    DatabaseUnavailableError,
    DetectorError,
    GeoreferenceError,
    InputError,
    IssueTransitionError,
    MetadataError,
    ObjectNotFoundError,
    SignatureError,
    StorageError,
    StorageUnavailableError,
    UnsafeKeyError,
    XunjianError,
)

__version__ = "0.1.0"

__all__ = [
    "CaseRefusedError",
    "CaseSystemError",
    "ConfigurationError",
    "DatabaseError",
    "DatabaseUnavailableError",
    "DetectorError",
    "GeoreferenceError",
    "InputError",
    "IssueTransitionError",
    "MetadataError",
    "ObjectNotFoundError",
    "SignatureError",
    "StorageError",
    "StorageUnavailableError",
    "UnsafeKeyError",
    "XunjianError",
    "__version__",
]
