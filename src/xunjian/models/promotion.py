"""The promotion gate: a candidate model goes into service only when it is not worse.

"Not worse" is measured on one evaluation per model, in the form of
:meth:`~xunjian.models.evaluate.EvalResult.to_dict` (``map50`` overall, ``classes`` →
``{has_data, map50, …}``): the candidate's overall mAP50 may fall at most ``tolerance`` below
the baseline's, and every class the baseline has figures for must have figures in the
candidate, at most ``class_tolerance`` below. Two sources of figures:

- **cards** (:func:`gate_from_cards`, the default): the figures each model card stores. Real
  validation figures are compared when the baseline has them (the candidate must have them
  too); else synthetic figures; a baseline without figures cannot be beaten or lost to.
  Cards measured on different validation data are compared all the same, with a note saying
  so: their figures are only indicative.
- **benchmark** (:func:`gate_from_evals`): both models evaluated on one fixed split — the fair
  comparison (``xunjian models promote --benchmark DATA_YAML``).

A refused promotion can be forced with a reason; the gate's result is kept in the active
pointer's history either way. :func:`rollback_target` finds the version that was in service
before the current one.

May import: the standard library only (cards and evaluations are plain JSON here).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

DEFAULT_TOLERANCE = 0.01
DEFAULT_CLASS_TOLERANCE = 0.03
SECTIONS = ("real_val", "synthetic_val")


@dataclass(frozen=True, slots=True)
class GateResult:
    """The gate's verdict, what it compared, and why it failed (``failures``)."""

    passed: bool
    basis: str
    failures: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    candidate: dict[str, Any] = field(default_factory=dict)
    baseline: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["failures"], out["notes"] = list(self.failures), list(self.notes)
        return out

    def lines(self) -> list[str]:
        """Human-readable lines for the CLI."""
        verdict = "passed" if self.passed else "REFUSED"
        out = [f"gate {verdict} ({self.basis})"]
        out += [f"  worse: {reason}" for reason in self.failures]
        out += [f"  note: {note}" for note in self.notes]
        return out


def summary(evaluation: dict[str, Any]) -> dict[str, Any]:
    """mAP50 overall and per class (None where a class has no figures), and the data."""
    classes = evaluation.get("classes", {})
    return {
        "map50": evaluation.get("map50"),
        "map50_95": evaluation.get("map50_95"),
        "data": evaluation.get("data"),
        "classes": {
            name: (c.get("map50") if c.get("has_data") else None) for name, c in classes.items()
        },
    }


def compare(
    candidate: dict[str, Any],
    baseline: dict[str, Any],
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    class_tolerance: float = DEFAULT_CLASS_TOLERANCE,
) -> list[str]:
    """Why ``candidate`` is worse than ``baseline`` (empty: it is not)."""
    failures: list[str] = []
    cand, base = summary(candidate), summary(baseline)
    if base["map50"] is not None:
        if cand["map50"] is None:
            failures.append(f"overall mAP50: candidate has none, baseline {base['map50']:.3f}")
        elif float(cand["map50"]) < float(base["map50"]) - tolerance:
            failures.append(
                f"overall mAP50 {cand['map50']:.3f} < baseline {base['map50']:.3f} "
                f"- tolerance {tolerance}"
            )
    for name, base_value in base["classes"].items():
        if base_value is None:
            continue
        value = cand["classes"].get(name)
        if value is None:
            failures.append(f"{name}: candidate has no figures, baseline mAP50 {base_value:.3f}")
        elif float(value) < float(base_value) - class_tolerance:
            failures.append(
                f"{name}: mAP50 {value:.3f} < baseline {base_value:.3f} "
                f"- tolerance {class_tolerance}"
            )
    return failures


def card_metrics(card: dict[str, Any], section: str) -> dict[str, Any] | None:
    metrics = card.get("metrics")
    if not isinstance(metrics, dict):
        return None
    found = metrics.get(section)
    return found if isinstance(found, dict) else None


def gate_from_cards(
    candidate: dict[str, Any],
    baseline: dict[str, Any] | None,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    class_tolerance: float = DEFAULT_CLASS_TOLERANCE,
) -> GateResult:
    """Compares the figures the two model cards store (see the module doc)."""
    if baseline is None:
        return GateResult(True, "no baseline: nothing in service to compare with")
    for section in SECTIONS:
        base = card_metrics(baseline, section)
        if base is None:
            continue
        cand = card_metrics(candidate, section)
        basis = f"cards, {section}"
        if cand is None:
            return GateResult(
                False,
                basis,
                (
                    f"the baseline card has {section} figures and the candidate's has none: "
                    "not comparable (compare both on one split with --benchmark DATA_YAML)",
                ),
                baseline=summary(base),
            )
        notes = []
        if cand.get("data") != base.get("data"):
            notes.append(
                f"measured on different data ({cand.get('data')} vs {base.get('data')}): "
                "indicative only; --benchmark DATA_YAML compares on one split"
            )
        failures = compare(cand, base, tolerance=tolerance, class_tolerance=class_tolerance)
        return GateResult(
            not failures, basis, tuple(failures), tuple(notes), summary(cand), summary(base)
        )
    return GateResult(True, "cards: the baseline card has no figures to compare with")


def gate_from_evals(
    candidate: dict[str, Any],
    baseline: dict[str, Any],
    data: str,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    class_tolerance: float = DEFAULT_CLASS_TOLERANCE,
) -> GateResult:
    """Compares two evaluations on the same benchmark split ``data``."""
    failures = compare(candidate, baseline, tolerance=tolerance, class_tolerance=class_tolerance)
    return GateResult(
        not failures,
        f"benchmark {data}",
        tuple(failures),
        (),
        summary(candidate),
        summary(baseline),
    )


def rollback_target(history: Sequence[dict[str, Any]], current: str | None) -> str | None:
    """The version that was in service before ``current`` was last promoted (None: shipped).

    Rolling back twice goes back twice: the target is found from the latest *promotion* to
    ``current``, not from the latest move.
    """
    for entry in reversed(history):
        if entry.get("action") == "promote" and entry.get("version") == current:
            previous = entry.get("from_version")
            return str(previous) if previous is not None else None
    raise LookupError(f"no promotion to {current!r} in the history")
