"""The model registry: detector versions in the object store, promotion, rollback, loading.

Layout in the store::

    models/<detector>/<version>/model.onnx      the weights
    models/<detector>/<version>/MODEL_CARD.md   for people
    models/<detector>/<version>/card.json       written last: a version exists once it is there
    models/<detector>/active.json               {"version", "history": [who/when/why/from]}
    models/<detector>/history/<seq>-<id>.json   each history entry, written once, before it

A version is immutable: registering other weights under a taken version is refused; the same
weights again is a no-op. ``active.json`` names the version in service; without it (first
run) the shipped weights in ``src/xunjian/models/weights/<detector>/`` serve, and
``"version": null`` after a rollback past the first promotion means the same. Every promotion
and rollback appends to its ``history`` — the gate's verdict (:mod:`xunjian.models.promotion`),
``forced`` and the reason included. The pointer is one object put, so a reader sees the old
pointer or the new one, never a mix. Each history entry is also its own object under a key
no other writer uses, and the history is read from those: two promotions racing on one
detector leave the last writer's version in service, and both entries in the history
(``active.json``'s own copy keeps only the last writer's view).

Models are downloaded to a local cache (``<cache_dir>/<detector>/<version>/``) and checked
against the card's SHA-256 before loading. :func:`list_models` is what the service's models
route shows.

May import: ``xunjian.core``, ``xunjian.errors``, ``xunjian.settings``,
``xunjian.storage.objectstore``, ``xunjian.models`` (registry, card, promotion, detector).
"""

from __future__ import annotations

import json
import re
import tempfile
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xunjian.core.taxonomy import Detector as DetectorName
from xunjian.errors import DetectorError, InputError, ObjectNotFoundError, StorageError
from xunjian.models.card import render_markdown, validate_card
from xunjian.models.detector import Detector, DetectorSet
from xunjian.models.export import sha256_file
from xunjian.models.promotion import (
    DEFAULT_CLASS_TOLERANCE,
    DEFAULT_TOLERANCE,
    GateResult,
    gate_from_cards,
    gate_from_evals,
    rollback_target,
)
from xunjian.models.registry import (
    WEIGHTS_DIR,
    BackendName,
    check_gsd,
    load_default_set,
    load_detector,
)
from xunjian.storage.objectstore import ObjectInfo, ObjectStore

if TYPE_CHECKING:
    from xunjian.settings import Settings

PREFIX = "models"
ACTIVE = "active.json"
HISTORY = "history"
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$")
_DETECTOR = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
Evaluate = Callable[[Path, Path, int], dict[str, Any]]
"""(model file, data.yaml, imgsz) → an evaluation as ``EvalResult.to_dict()``."""


def check_version(version: str) -> str:
    if not _VERSION.match(version) or version in (ACTIVE, HISTORY):
        raise InputError(
            f"model version: expected letters, digits, '.', '_', '+' or '-', got {version!r}"
        )
    return version


@dataclass(frozen=True, slots=True)
class ActivePointer:
    """What ``active.json`` says: the version in service (None: shipped) and its history."""

    detector: str
    version: str | None
    history: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class Promotion:
    """A promotion or rollback: ``changed`` is False when refused or already in service."""

    detector: str
    action: str
    version: str | None
    from_version: str | None
    changed: bool
    forced: bool = False
    gate: GateResult | None = None


def _now() -> datetime:
    return datetime.now(UTC)


def _by_key(info: ObjectInfo) -> str:
    return info.key


class ModelRegistry:
    """Model versions of every detector in one object store (see the module doc)."""

    def __init__(
        self,
        store: ObjectStore,
        *,
        cache_dir: Path | None = None,
        weights_dir: Path | None = None,
        clock: Callable[[], datetime] = _now,
        backend: BackendName = "onnxruntime",
        threads: int | None = None,
    ) -> None:
        self.store = store
        self.cache_dir = Path(cache_dir or Path(tempfile.gettempdir()) / "xunjian-models")
        self.weights_dir = Path(weights_dir) if weights_dir is not None else WEIGHTS_DIR
        self._clock = clock
        self.backend: BackendName = backend
        self.threads = threads

    @classmethod
    def from_settings(cls, settings: Settings, store: ObjectStore | None = None) -> ModelRegistry:
        from xunjian.storage.objectstore import open_store

        return cls(
            store or open_store(settings),
            cache_dir=settings.model_cache_dir or settings.data_dir / "models",
        )

    # -- reading -----------------------------------------------------------------------

    def _key(self, detector: str, *parts: str) -> str:
        if not _DETECTOR.match(detector):
            raise InputError(f"detector: expected a name such as road_damage, got {detector!r}")
        return "/".join((PREFIX, detector, *parts))

    def detectors(self) -> list[str]:
        """The taxonomy's detectors, then any other detector found in the store."""
        names = [d.value for d in DetectorName]
        for info in self.store.list(f"{PREFIX}/"):
            parts = info.key.split("/")
            if len(parts) >= 3 and _DETECTOR.match(parts[1]) and parts[1] not in names:
                names.append(parts[1])
        return names

    def card(self, detector: str, version: str) -> dict[str, Any]:
        """The stored card of one version; ObjectNotFoundError naming the registered ones."""
        key = self._key(detector, check_version(version), "card.json")
        try:
            loaded: dict[str, Any] = json.loads(self.store.get_bytes(key))
        except ObjectNotFoundError:
            have = ", ".join(self.version_names(detector)) or "none"
            raise ObjectNotFoundError(
                f"{detector}@{version} is not registered (registered: {have})"
            ) from None
        except ValueError as error:
            raise StorageError(f"{self.store.bucket}/{key}: unreadable card: {error}") from None
        return loaded

    def version_names(self, detector: str) -> list[str]:
        found = []
        for info in self.store.list(self._key(detector) + "/"):
            parts = info.key.split("/")
            if len(parts) == 4 and parts[3] == "card.json":
                found.append(parts[2])
        return found

    def versions(self, detector: str) -> list[dict[str, Any]]:
        """Every registered card of ``detector``, oldest registration first."""
        cards = [self.card(detector, v) for v in self.version_names(detector)]
        return sorted(cards, key=lambda c: (c.get("registry", {}).get("registered_at", ""),))

    def pointer(self, detector: str) -> ActivePointer:
        key = self._key(detector, ACTIVE)
        try:
            raw = json.loads(self.store.get_bytes(key))
        except ObjectNotFoundError:
            return ActivePointer(detector, None)
        except ValueError as error:
            raise StorageError(f"{self.store.bucket}/{key}: unreadable pointer: {error}") from None
        version = raw.get("version")
        return ActivePointer(detector, version, self._history(detector, raw.get("history", [])))

    def _history(self, detector: str, copied: list[dict[str, Any]]) -> tuple[dict[str, Any], ...]:
        """The entries under ``history/`` in order, after any older entry that has none (the
        copy in ``active.json`` from before entries had their own objects)."""
        stored: list[dict[str, Any]] = []
        for info in sorted(self.store.list(self._key(detector, HISTORY) + "/"), key=_by_key):
            try:
                stored.append(json.loads(self.store.get_bytes(info.key)))
            except ValueError as error:
                raise StorageError(
                    f"{self.store.bucket}/{info.key}: unreadable history entry: {error}"
                ) from None
        ids = {entry.get("id") for entry in stored}
        older = [e for e in copied if "id" not in e]
        lost = [e for e in copied if "id" in e and e["id"] not in ids]
        return (*older, *stored, *lost)

    def active_version(self, detector: str) -> str | None:
        """The version in service, or None when the shipped weights serve (reads only the
        pointer, not the history: the hot reload asks this often)."""
        try:
            raw = json.loads(self.store.get_bytes(self._key(detector, ACTIVE)))
        except ObjectNotFoundError:
            return None
        except ValueError as error:
            key = self._key(detector, ACTIVE)
            raise StorageError(f"{self.store.bucket}/{key}: unreadable pointer: {error}") from None
        version = raw.get("version")
        return str(version) if version is not None else None

    def shipped_card(self, detector: str) -> dict[str, Any] | None:
        path = self.weights_dir / detector / "card.json"
        if not path.is_file():
            return None
        try:
            loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise DetectorError(f"{path}: unreadable model card: {error}") from None
        return loaded

    # -- registering -------------------------------------------------------------------

    def register(
        self,
        folder: Path,
        *,
        detector: str | None = None,
        version: str | None = None,
        by: str = "",
        gsd_m: float | None = None,
    ) -> tuple[str, bool]:
        """Uploads ``folder`` (model.onnx + card.json) as a version; returns (version, created).

        The card is checked first (keys, classes, the ONNX file's SHA-256). ``version``
        renames the card's version (MODEL_CARD.md is rendered again); ``gsd_m`` sets the
        ground sampling the model was trained at (the detect stage's working scale).
        """
        card = validate_card(Path(folder))
        if gsd_m is not None:
            card["gsd_m"] = check_gsd(gsd_m, str(folder))
        name = str(card["detector"])
        if detector is not None and detector != name:
            raise InputError(
                f"expected a card for detector {detector}, got {name}", source=str(folder)
            )
        version = check_version(version or str(card["version"]))
        source_file = Path(folder) / str(card.get("file", "model.onnx"))
        card.update(version=version, file="model.onnx")
        try:
            held = self.card(name, version)
        except ObjectNotFoundError:
            held = None
        if held is not None:
            if held.get("sha256") == card["sha256"]:
                return version, False
            raise InputError(
                f"{name}@{version} is registered with other weights (sha256 {held.get('sha256')});"
                " versions are immutable: pass another --version"
            )
        model_key = self._key(name, version, "model.onnx")
        if self.store.exists(model_key) and self.store.stat(model_key).sha256 != card["sha256"]:
            raise StorageError(
                f"{self.store.bucket}/{model_key}: holds other weights; not replaced"
            )
        self.store.put_file(model_key, source_file)
        self.store.put_bytes(
            self._key(name, version, "MODEL_CARD.md"),
            render_markdown(card).encode("utf-8"),
            content_type="text/markdown; charset=utf-8",
        )
        card["registry"] = {
            "registered_at": self._clock().isoformat(timespec="seconds"),
            "registered_by": by,
            "registered_from": str(Path(folder).resolve()),
        }
        self.store.put_bytes(
            self._key(name, version, "card.json"),
            json.dumps(card, indent=1, ensure_ascii=False).encode("utf-8"),
            content_type="application/json",
        )
        return version, True

    # -- promotion and rollback --------------------------------------------------------

    def _write_pointer(
        self, pointer: ActivePointer, version: str | None, entry: dict[str, Any]
    ) -> None:
        body = {
            "schema": 1,
            "detector": pointer.detector,
            "version": version,
            "updated_at": entry["at"],
            "history": [*pointer.history, entry],
        }
        seq = len(pointer.history) + 1
        self.store.put_bytes(
            self._key(pointer.detector, HISTORY, f"{seq:06d}-{entry['id']}.json"),
            json.dumps(entry, indent=1, ensure_ascii=False).encode("utf-8"),
            content_type="application/json",
        )
        self.store.put_bytes(
            self._key(pointer.detector, ACTIVE),
            json.dumps(body, indent=1, ensure_ascii=False).encode("utf-8"),
            content_type="application/json",
        )

    def _entry(
        self, action: str, version: str | None, before: str | None, by: str, reason: str
    ) -> dict[str, Any]:
        return {
            "id": uuid.uuid4().hex[:12],
            "action": action,
            "version": version,
            "from_version": before,
            "by": by,
            "at": self._clock().isoformat(timespec="seconds"),
            "reason": reason,
        }

    def model_file(self, detector: str, version: str | None) -> Path:
        """A local path of the version's ONNX file (the shipped one for None)."""
        if version is None:
            return self.weights_dir / detector / "model.onnx"
        return self.fetch(detector, version) / "model.onnx"

    def promote(
        self,
        detector: str,
        version: str,
        *,
        by: str = "",
        reason: str = "",
        force: bool = False,
        tolerance: float = DEFAULT_TOLERANCE,
        class_tolerance: float = DEFAULT_CLASS_TOLERANCE,
        benchmark: Path | None = None,
        evaluate: Evaluate | None = None,
    ) -> Promotion:
        """Puts ``version`` in service when the gate passes (or ``force`` with a reason).

        The baseline is the version in service, else the shipped model's card. With
        ``benchmark`` (a data.yaml) both models are evaluated on its val split instead of
        comparing their cards.
        """
        if force and not reason.strip():
            raise InputError("a forced promotion needs a reason (--reason)")
        candidate = self.card(detector, version)
        pointer = self.pointer(detector)
        if pointer.version == version:
            return Promotion(detector, "promote", version, version, False)
        baseline = (
            self.card(detector, pointer.version) if pointer.version else self.shipped_card(detector)
        )
        limits = {"tolerance": tolerance, "class_tolerance": class_tolerance}
        if benchmark is not None and baseline is not None:
            run = evaluate or _evaluate
            imgsz = int(candidate["imgsz"])
            cand_eval = run(self.model_file(detector, version), Path(benchmark), imgsz)
            base_eval = run(self.model_file(detector, pointer.version), Path(benchmark), imgsz)
            gate = gate_from_evals(cand_eval, base_eval, str(benchmark), **limits)
        else:
            gate = gate_from_cards(candidate, baseline, **limits)
        if not gate.passed and not force:
            return Promotion(
                detector, "promote", pointer.version, pointer.version, False, gate=gate
            )
        entry = self._entry("promote", version, pointer.version, by, reason)
        entry.update(forced=not gate.passed, gate=gate.to_dict())
        self._write_pointer(pointer, version, entry)
        return Promotion(detector, "promote", version, pointer.version, True, not gate.passed, gate)

    def rollback(
        self, detector: str, *, by: str = "", reason: str = "", to: str | None = None
    ) -> Promotion:
        """Puts the previous version back in service (``to``: a given one, or ``shipped``)."""
        pointer = self.pointer(detector)
        if to is None:
            if pointer.version is None:
                raise InputError(f"nothing to roll back: {detector} runs the shipped model")
            try:
                target = rollback_target(pointer.history, pointer.version)
            except LookupError:
                raise InputError(
                    f"{detector}: the history does not say what preceded {pointer.version}; "
                    "pass --to VERSION (or --to shipped)"
                ) from None
        else:
            target = None if to == "shipped" else to
        if target is not None:
            self.card(detector, target)  # must be registered
        entry = self._entry("rollback", target, pointer.version, by, reason)
        self._write_pointer(pointer, target, entry)
        return Promotion(detector, "rollback", target, pointer.version, target != pointer.version)

    # -- loading -----------------------------------------------------------------------

    def fetch(self, detector: str, version: str) -> Path:
        """The version's folder in the local cache, downloaded and SHA-256-checked."""
        card = self.card(detector, version)
        folder = self.cache_dir / detector / check_version(version)
        model = folder / "model.onnx"
        if not (model.is_file() and sha256_file(model) == card["sha256"]):
            self.store.download_file(self._key(detector, version, "model.onnx"), model)
            found = sha256_file(model)
            if found != card["sha256"]:
                model.unlink()
                raise DetectorError(
                    f"{detector}@{version}: expected sha256 {card['sha256']}, downloaded {found}"
                )
        (folder / "card.json").write_text(json.dumps(card, indent=1, ensure_ascii=False), "utf-8")
        return folder

    def load(self, detector: str, version: str | None) -> Detector:
        """One detector at ``version`` (None: the shipped model)."""
        if version is None:
            return next(
                iter(
                    load_default_set(
                        [detector],
                        weights_dir=self.weights_dir,
                        backend=self.backend,
                        threads=self.threads,
                    )
                )
            )
        card = self.card(detector, version)
        return load_detector(
            self.fetch(detector, version) / "model.onnx",
            detector=detector,
            classes=card.get("classes"),
            version=str(card["version"]),
            backend=self.backend,
            imgsz=card.get("imgsz"),
            threads=self.threads,
            gsd_m=check_gsd(card.get("gsd_m"), f"{detector}@{version} card"),
        )

    def active_set(self, detectors: Sequence[str] | None = None) -> DetectorSet:
        """The detectors in service now (store pointer, else shipped), loaded."""
        names = list(detectors) if detectors else [d.value for d in DetectorName]
        return DetectorSet([self.load(n, self.active_version(n)) for n in names])


def _evaluate(model: Path, data_yaml: Path, imgsz: int) -> dict[str, Any]:
    from xunjian.models.evaluate import evaluate_model

    return evaluate_model(model, data_yaml, imgsz=imgsz).to_dict()


def card_summary(card: dict[str, Any]) -> dict[str, Any]:
    """What a listing shows of one card: figures, data, creation."""
    metrics = card.get("metrics") or {}
    section = next((s for s in ("real_val", "synthetic_val") if metrics.get(s)), None)
    figures = metrics.get(section) if section else None
    data = card.get("data") or {}
    return {
        "version": card.get("version"),
        "created_at": card.get("created_at"),
        "registered_at": (card.get("registry") or {}).get("registered_at"),
        "registered_by": (card.get("registry") or {}).get("registered_by"),
        "sha256": card.get("sha256"),
        "imgsz": card.get("imgsz"),
        "metrics": {
            "basis": section,
            "map50": figures.get("map50") if figures else None,
            "map50_95": figures.get("map50_95") if figures else None,
            "classes": {
                name: c.get("map50") if c.get("has_data") else None
                for name, c in (figures.get("classes", {}) if figures else {}).items()
            },
        },
        "data": {
            "sources": [s.get("name") for s in data.get("sources", [])],
            "licences": data.get("licences", []),
            "train_images": (card.get("training") or {}).get("train_images"),
        },
    }


def list_models(store: ObjectStore, *, weights_dir: Path | None = None) -> list[dict[str, Any]]:
    """Every detector with its registered versions, the one in service and where it comes
    from (``store`` or ``shipped``); JSON-ready, for the service's models route."""
    registry = ModelRegistry(store, weights_dir=weights_dir)
    out = []
    for detector in registry.detectors():
        pointer = registry.pointer(detector)
        shipped = registry.shipped_card(detector)
        versions = [card_summary(c) for c in registry.versions(detector)]
        for entry in versions:
            entry["active"] = entry["version"] == pointer.version
        source = "store" if pointer.version else ("shipped" if shipped else None)
        out.append(
            {
                "detector": detector,
                "active_version": pointer.version or (shipped or {}).get("version"),
                "source": source,
                "versions": versions,
                "shipped": card_summary(shipped) if shipped else None,
                "history": list(pointer.history[-10:]),
            }
        )
    return out
