"""Shared fixtures. Each fixture module under tests/fixtures/ owns one real component."""

from __future__ import annotations

pytest_plugins = [
    "tests.fixtures.common",
    "tests.fixtures.s3",
    "tests.fixtures.db",
    "tests.fixtures.labelled",
    "tests.fixtures.models",
    "tests.fixtures.cases",
    "tests.fixtures.service",
]
