"""The case-system mapping: which code each class becomes, and what status words mean.

Case-system codes are configuration, never code (specs/taxonomy.md): a YAML file maps every
class of the taxonomy to an Open311 ``service_code`` and a 数字城管 (GB/T 30428) pair of
大类/小类 codes, sets the confidence at which an issue is published, and maps the case
system's status words to issue statuses. The shipped ``data/mapping.yaml`` is an example;
cities point ``XUNJIAN_CASE_MAPPING`` at their own copy.

:func:`load_mapping` validates the file (every class present, known statuses, thresholds in
[0, 1]) and raises :class:`~xunjian.errors.ConfigurationError` naming the file, the entry
and what was expected. Checking service codes against a live Open311 server is the
connector's job (``Open311Connector.check``).

May import: PyYAML, the standard library, ``xunjian.core`` and ``xunjian.errors``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from xunjian.core.issues import IssueStatus
from xunjian.core.taxonomy import BY_NAME
from xunjian.errors import ConfigurationError

DEFAULT_MAPPING = Path(__file__).resolve().parent / "data" / "mapping.yaml"
SZCG_FIELDS = ("kind", "major_code", "major", "minor_code", "minor")
_ALLOWED_TARGETS = (
    IssueStatus.PUBLISHED,
    IssueStatus.DISPATCHED,
    IssueStatus.IN_PROGRESS,
    IssueStatus.CLOSED,
    IssueStatus.REJECTED,
)


@dataclass(frozen=True, slots=True)
class SzcgCode:
    """A 数字城管 category: 部件 or 事件, 大类 (major) and 小类 (minor), codes and names."""

    kind: str
    major_code: str
    major: str
    minor_code: str
    minor: str

    def as_dict(self) -> dict[str, str]:
        return {name: getattr(self, name) for name in SZCG_FIELDS}


@dataclass(frozen=True, slots=True)
class ClassCodes:
    """What one xunjian class becomes in the case system."""

    class_name: str
    service_code: str
    szcg: SzcgCode
    publish_threshold: float


@dataclass(frozen=True)
class CaseMapping:
    """The validated mapping file."""

    source: str
    classes: dict[str, ClassCodes]
    statuses: dict[str, IssueStatus] = field(default_factory=dict)

    def codes(self, class_name: str) -> ClassCodes:
        try:
            return self.classes[class_name]
        except KeyError:
            raise ConfigurationError(
                f"{self.source}: no case-system codes for class {class_name!r}; "
                f"expected one of {', '.join(sorted(self.classes))}"
            ) from None

    def threshold(self, class_name: str) -> float:
        return self.codes(class_name).publish_threshold

    def service_codes(self) -> set[str]:
        return {c.service_code for c in self.classes.values()}

    def status_for(self, word: str) -> IssueStatus | None:
        """The issue status a case-system status word means, or None for an unknown word."""
        return self.statuses.get(word.strip().lower())


def load_mapping(path: Path | None = None) -> CaseMapping:
    """The mapping at ``path`` (default: the shipped example), validated."""
    source = path or DEFAULT_MAPPING
    try:
        document = yaml.safe_load(Path(source).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigurationError(f"case mapping {source}: cannot read: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"case mapping {source}: not valid YAML: {exc}") from None
    return parse_mapping(document, str(source))


def parse_mapping(document: Any, source: str = "case mapping") -> CaseMapping:
    """A :class:`CaseMapping` from the parsed YAML ``document``; ConfigurationError if wrong."""

    def bad(where: str, expected: str, got: Any) -> ConfigurationError:
        return ConfigurationError(f"{source}: {where}: expected {expected}, got {got!r}")

    if not isinstance(document, dict):
        raise bad("top level", "a mapping with 'classes'", document)
    default = _threshold(document.get("default_publish_threshold", 0.5), "default", bad)
    entries = document.get("classes")
    if not isinstance(entries, dict):
        raise bad("classes", "a mapping of class name → codes", entries)
    unknown = sorted(set(entries) - set(BY_NAME))
    if unknown:
        raise bad("classes", f"only taxonomy classes ({', '.join(BY_NAME)})", unknown)
    missing = [name for name in BY_NAME if name not in entries]
    if missing:
        raise bad("classes", "an entry for every class", f"none for {', '.join(missing)}")
    classes: dict[str, ClassCodes] = {}
    for name, entry in entries.items():
        where = f"classes.{name}"
        if not isinstance(entry, dict):
            raise bad(where, "a mapping with service_code and szcg", entry)
        code = entry.get("service_code")
        if not isinstance(code, str) or not code.strip():
            raise bad(f"{where}.service_code", "a non-empty string", code)
        szcg = entry.get("szcg")
        if not isinstance(szcg, dict) or any(
            not isinstance(szcg.get(k), str | int) or not str(szcg.get(k)).strip()
            for k in SZCG_FIELDS
        ):
            raise bad(f"{where}.szcg", f"a mapping with {', '.join(SZCG_FIELDS)}", szcg)
        if str(szcg["kind"]) not in ("部件", "事件"):
            raise bad(f"{where}.szcg.kind", "部件 or 事件", szcg["kind"])
        threshold = _threshold(entry.get("publish_threshold", default), where, bad)
        classes[name] = ClassCodes(
            name,
            code.strip(),
            SzcgCode(*(str(szcg[k]).strip() for k in SZCG_FIELDS)),
            threshold,
        )
    words = document.get("statuses", {}) or {}
    if not isinstance(words, dict):
        raise bad("statuses", "a mapping of status word → issue status", words)
    statuses: dict[str, IssueStatus] = {}
    allowed = tuple(_ALLOWED_TARGETS)
    for word, status in words.items():
        if status not in {s.value for s in allowed}:
            raise bad(f"statuses.{word}", f"one of {', '.join(allowed)}", status)
        statuses[str(word).strip().lower()] = IssueStatus(status)
    return CaseMapping(source, classes, statuses)


def _threshold(value: Any, where: str, bad: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise bad(f"{where} publish threshold", "a number in [0, 1]", value)
    return float(value)
