"""Every protected route answers 401 without a valid key and 403 for a key of another role.

The routes are walked from ``app.routes``, so a route added later cannot escape: it either
has a RoleGuard or is in PUBLIC with the reason it needs none.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.routing import iter_route_contexts

from tests.fixtures.service import RunningService
from xunjian.service.auth import RoleGuard
from xunjian.storage.apikeys import ROLES

PUBLIC = {
    "/healthz": "liveness",
    "/readyz": "readiness",
    "/": "the map page holds no data; it reads the API with the user's key",
    "/static/{name}": "the map page's script and style",
    "/api/v1/objects/{key:path}": "presigned URLs: the signature is the authorisation",
    "/openapi.json": "the API description",
    "/docs": "the API description",
    "/docs/oauth2-redirect": "the API description",
    "/redoc": "the API description",
}


def guards(dependant: Any) -> list[RoleGuard]:
    found = []
    for sub in dependant.dependencies:
        if isinstance(sub.call, RoleGuard):
            found.append(sub.call)
        found.extend(guards(sub))
    return found


def protected_routes(app: Any) -> list[tuple[str, str, RoleGuard]]:
    out = []
    for route in iter_route_contexts(app.routes):  # included routers flattened
        path = route.path
        if path in PUBLIC:
            continue
        dependant = getattr(route, "dependant", None)
        assert dependant is not None, f"{path}: not an API route and not in PUBLIC"
        found = guards(dependant)
        assert len(found) == 1, f"{path}: expected one RoleGuard, got {found}"
        out.extend((method, path, found[0]) for method in sorted(route.methods))
    return out


def refused_for_role(response: Any) -> bool:
    """A 403 of the role check (the callback also answers 403 for a bad signature)."""
    return response.status_code == 403 and "this needs one of" in response.json()["detail"]


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x1", path)


def test_every_route_is_guarded_or_public_for_a_reason(service: RunningService) -> None:
    routes = protected_routes(service.app)
    assert len(routes) >= 15
    assert all(guard.roles >= {"admin"} for _, _, guard in routes)


def test_protected_routes_refuse_missing_bad_revoked_and_wrong_role_keys(
    service: RunningService,
) -> None:
    client = service.client
    state = service.state
    _, revoked = state.keys.create("gone", "admin")
    state.keys.revoke("gone")
    checked = 0
    for method, path, guard in protected_routes(service.app):
        url = concrete(path)
        for headers in (
            {},
            {"X-API-Key": "xj_00000000_" + "A" * 43},
            {"Authorization": "Bearer not-a-key"},
            {"Authorization": f"Bearer {revoked}"},
        ):
            response = client.request(method, url, headers=headers, key="")
            assert response.status_code == 401, (method, path, headers, response.text)
            assert response.json()["detail"]
        for role in ROLES:
            response = client.request(method, url, key=service.keys[role])
            if role in guard.roles:
                assert response.status_code != 401, (method, path, role)
                assert not refused_for_role(response), (method, path, role)
            else:
                assert refused_for_role(response), (method, path, role, response.text)
                assert role in response.json()["detail"]
                checked += 1
    assert checked >= 18


def test_both_headers_carry_a_key(service: RunningService) -> None:
    key = service.keys["case_platform"]
    by_bearer = service.client.get("/api/v1/issues", headers={"Authorization": f"Bearer {key}"})
    by_header = service.client.get("/api/v1/issues", headers={"X-API-Key": key})
    assert by_bearer.status_code == by_header.status_code == 200
    missing = service.client.get("/api/v1/issues", key="")
    assert missing.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    ("role", "allowed"),
    [
        ("uploader", {"upload", "read"}),
        ("case_platform", {"read", "feedback", "callback", "stats"}),
        ("ml_engineer", {"read", "feedback", "stats", "metrics"}),
        ("admin", {"upload", "read", "feedback", "callback", "stats", "metrics"}),
    ],
)
def test_what_each_role_may_do(service: RunningService, role: str, allowed: set[str]) -> None:
    probes = {
        "upload": ("POST", "/api/v1/batches"),
        "read": ("GET", "/api/v1/issues"),
        "feedback": ("POST", "/api/v1/issues/x1/feedback"),
        "callback": ("POST", "/api/v1/cases/callback"),
        "stats": ("GET", "/api/v1/stats"),
        "metrics": ("GET", "/metrics"),
    }
    for action, (method, path) in probes.items():
        response = service.client.request(method, path, key=service.keys[role])
        assert refused_for_role(response) != (action in allowed), (role, action, response.text)
