"""The package's public names: a drift here is an API change and must be deliberate."""

from __future__ import annotations

import types

import xunjian

EXPECTED = {
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
}


def test_exported_members_are_exactly_the_public_api() -> None:
    assert set(xunjian.__all__) == EXPECTED
    public = {
        name
        for name, value in vars(xunjian).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    } | {"__version__"}
    assert public == EXPECTED


def test_every_error_has_one_root_and_the_builtin_it_means() -> None:
    for name in EXPECTED - {"__version__", "XunjianError"}:
        assert issubclass(getattr(xunjian, name), xunjian.XunjianError), name
    assert issubclass(xunjian.InputError, ValueError)
    assert issubclass(xunjian.StorageError, OSError)
    assert issubclass(xunjian.ObjectNotFoundError, FileNotFoundError)
    assert issubclass(xunjian.MetadataError, xunjian.InputError)
    assert issubclass(xunjian.StorageUnavailableError, xunjian.StorageError)
    assert issubclass(xunjian.SignatureError, xunjian.CaseSystemError)
    assert issubclass(xunjian.DatabaseUnavailableError, xunjian.DatabaseError)


def test_input_errors_name_their_source() -> None:
    error = xunjian.MetadataError("GPS latitude 95 is out of range", source="DJI_0001.JPG")
    assert str(error) == "DJI_0001.JPG: GPS latitude 95 is out of range"
    assert error.source == "DJI_0001.JPG"
    assert error.reason == "GPS latitude 95 is out of range"
