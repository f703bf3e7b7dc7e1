"""Models: the detectors, their registered versions and cards, and which version serves."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, status

from xunjian.core.taxonomy import Detector
from xunjian.service.deps import Reader, Store

router = APIRouter(prefix="/api/v1", tags=["models"])
DetectorName = Annotated[str, Path(pattern=r"^[a-z_]{1,64}$", description="e.g. road_damage")]


@router.get("/models", response_model=list[dict[str, Any]])
def list_models(key: Reader, store: Store) -> list[dict[str, Any]]:
    """Every detector: its versions (cards summarised), the active one and where it comes from
    (``store``: promoted in the registry; ``shipped``: the weights in the package)."""
    from xunjian.models.versions import list_models as registry_models

    return registry_models(store)


@router.get("/models/{detector}", response_model=dict[str, Any])
def get_model(key: Reader, store: Store, detector: DetectorName) -> dict[str, Any]:
    """One detector's entry of ``GET /models``."""
    if detector not in {d.value for d in Detector}:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"no detector {detector!r}; expected one of {', '.join(d.value for d in Detector)}",
        )
    from xunjian.models.versions import list_models as registry_models

    for entry in registry_models(store):
        if entry["detector"] == detector:
            return entry
    raise HTTPException(status.HTTP_404_NOT_FOUND, f"detector {detector!r} has no model")
