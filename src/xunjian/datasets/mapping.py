"""Class mapping tables: source-dataset labels onto the taxonomy, as data files.

A table (``mappings/<name>.yaml`` or any YAML path) has ``map`` (source name → taxonomy class)
and ``keep`` (known source names with no taxonomy class, with a note). Applying a table
renames mapped boxes; every other name is kept as it is and reported, so nothing is lost and
a later table can map it. Names already in the taxonomy pass through unchanged. Matching is
exact first, then case-insensitive.

Imports: the standard library, PyYAML, :mod:`xunjian.core.taxonomy`, ``datasets.records``,
:mod:`xunjian.errors`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import yaml

from xunjian.core.taxonomy import BY_NAME, CLASSES
from xunjian.datasets.records import Dataset
from xunjian.errors import ConfigurationError

_PACKAGE_TABLES = "mappings"


@dataclass(frozen=True, slots=True)
class ClassMapping:
    """One mapping table. ``table`` maps source names to taxonomy class names."""

    name: str
    table: dict[str, str]
    keep: dict[str, str] = field(default_factory=dict)
    description: str = ""

    def target(self, source_name: str) -> str | None:
        """The taxonomy class for a source name, or None when it stays unmapped."""
        if source_name in self.table:
            return self.table[source_name]
        if source_name in BY_NAME:
            return source_name
        folded = {k.casefold(): v for k, v in self.table.items()}
        return folded.get(source_name.casefold())

    def targets(self) -> set[str]:
        return set(self.table.values())


IDENTITY = ClassMapping("identity", {}, description="taxonomy names only")


@dataclass(frozen=True, slots=True)
class MappingReport:
    """What a mapping did: boxes renamed per (source, target) pair, and names kept as is."""

    mapping: str
    mapped: dict[tuple[str, str], int]
    unmapped: dict[str, int]
    expected_unmapped: frozenset[str]

    @property
    def unexpected(self) -> dict[str, int]:
        """Unmapped names the table does not list under ``keep``: maybe a typo or a new class."""
        return {k: v for k, v in self.unmapped.items() if k not in self.expected_unmapped}

    def lines(self) -> list[str]:
        out = [f"{s} → {t}: {n}" for (s, t), n in sorted(self.mapped.items()) if s != t]
        out += [
            f"{s}: kept by name ({n}){'' if s in self.expected_unmapped else ', NOT in table'}"
            for s, n in sorted(self.unmapped.items())
        ]
        return out


def _parse(data: object, where: str) -> ClassMapping:
    if not isinstance(data, dict) or not isinstance(data.get("map"), dict):
        raise ConfigurationError(f"{where}: expected a mapping with a 'map' table")
    table = {str(k): str(v) for k, v in data["map"].items()}
    wrong = sorted(v for v in set(table.values()) if v not in BY_NAME)
    if wrong:
        raise ConfigurationError(
            f"{where}: targets {', '.join(wrong)} are not taxonomy classes; "
            f"expected one of {', '.join(BY_NAME)}"
        )
    keep_raw = data.get("keep") or {}
    if isinstance(keep_raw, list):
        keep_raw = {str(k): "" for k in keep_raw}
    if not isinstance(keep_raw, dict):
        raise ConfigurationError(f"{where}: 'keep' must be a table or a list")
    keep = {str(k): str(v or "") for k, v in keep_raw.items()}
    clash = sorted(set(keep) & set(table))
    if clash:
        raise ConfigurationError(f"{where}: {', '.join(clash)} both mapped and kept")
    name = str(data.get("name") or Path(where).stem)
    return ClassMapping(name, table, keep, str(data.get("description") or ""))


def available_mappings() -> list[str]:
    """Names of the tables shipped with the package."""
    folder = resources.files("xunjian.datasets").joinpath(_PACKAGE_TABLES)
    return sorted(
        p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml")
    )


def load_mapping(name_or_path: str | Path) -> ClassMapping:
    """A shipped table by name (``rdd``) or a YAML file by path; ConfigurationError if neither."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            raise ConfigurationError(f"{path}: cannot read mapping: {error}") from None
        where = str(path)
    else:
        if str(name_or_path) == IDENTITY.name:
            return IDENTITY
        resource = resources.files("xunjian.datasets").joinpath(
            _PACKAGE_TABLES, f"{name_or_path}.yaml"
        )
        if not resource.is_file():
            raise ConfigurationError(
                f"unknown mapping {str(name_or_path)!r}; expected a YAML path or one of "
                f"{', '.join(available_mappings())}"
            )
        text = resource.read_text(encoding="utf-8")
        where = f"mappings/{name_or_path}.yaml"
    try:
        return _parse(yaml.safe_load(text), where)
    except yaml.YAMLError as error:
        raise ConfigurationError(f"{where}: not valid YAML: {error}") from None


def guess_mapping(dataset: Dataset) -> ClassMapping:
    """The shipped table that maps most of the dataset's boxes (identity when none does)."""
    counts = dataset.class_counts()
    best, best_score = IDENTITY, 0
    for name in available_mappings():
        mapping = load_mapping(name)
        score = sum(n for c, n in counts.items() if c not in BY_NAME and mapping.target(c))
        if score > best_score:
            best, best_score = mapping, score
    return best


def apply_mapping(dataset: Dataset, mapping: ClassMapping) -> tuple[Dataset, MappingReport]:
    """Boxes renamed onto the taxonomy; unmapped names kept. Class names: taxonomy order
    first, then the kept names."""
    mapped: Counter[tuple[str, str]] = Counter()
    unmapped: Counter[str] = Counter()
    images = []
    for image in dataset.images:
        boxes = []
        for box in image.boxes:
            target = mapping.target(box.class_name)
            if target is None:
                unmapped[box.class_name] += 1
                boxes.append(box)
            else:
                mapped[(box.class_name, target)] += 1
                boxes.append(box.renamed(target))
        images.append(image.with_boxes(tuple(boxes)))
    declared = [mapping.target(n) or n for n in dataset.class_names]
    taxonomy = [c.name for c in CLASSES if c.name in declared or c.name in mapping.targets()]
    others = [n for n in dict.fromkeys(declared) if n not in BY_NAME]
    result = Dataset(
        images=tuple(images),
        name=dataset.name,
        sources=dataset.sources,
        licences=dataset.licences,
        problems=dataset.problems,
        class_names=tuple(taxonomy + others),
    )
    report = MappingReport(mapping.name, dict(mapped), dict(unmapped), frozenset(mapping.keep))
    return result, report
