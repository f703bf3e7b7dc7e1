"""The dependencies routes declare: the service state, its stores, and the caller's key by role.

``Uploader``, ``Reader``, ``Reviewer``… are ``Annotated`` types: a route that takes
``key: Reader`` requires a key of one of the reader roles (``admin`` always passes).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from xunjian.service.auth import ADMIN, ALL_ROLES, CASE_PLATFORM, ML_ENGINEER, UPLOADER, RoleGuard
from xunjian.service.state import ServiceState
from xunjian.settings import Settings
from xunjian.storage.apikeys import ApiKey
from xunjian.storage.catalog import Catalog
from xunjian.storage.issues import IssueStore
from xunjian.storage.objectstore import ObjectStore


def get_state(request: Request) -> ServiceState:
    state: ServiceState = request.app.state.xunjian
    return state


State = Annotated[ServiceState, Depends(get_state)]


def get_settings(state: State) -> Settings:
    return state.settings


def get_store(state: State) -> ObjectStore:
    return state.services.store


def get_catalog(state: State) -> Catalog:
    return state.services.catalog


def get_issues(state: State) -> IssueStore:
    return state.services.issues


SettingsDep = Annotated[Settings, Depends(get_settings)]
Store = Annotated[ObjectStore, Depends(get_store)]
CatalogDep = Annotated[Catalog, Depends(get_catalog)]
Issues = Annotated[IssueStore, Depends(get_issues)]

# One guard object per role set, so routes that share a set share the object.
UPLOAD_GUARD = RoleGuard(UPLOADER)
READ_GUARD = RoleGuard(*ALL_ROLES)
REVIEW_GUARD = RoleGuard(CASE_PLATFORM, ML_ENGINEER)
CASES_GUARD = RoleGuard(CASE_PLATFORM)
ML_GUARD = RoleGuard(ML_ENGINEER)
ADMIN_GUARD = RoleGuard(ADMIN)

Uploader = Annotated[ApiKey, Depends(UPLOAD_GUARD)]
Reader = Annotated[ApiKey, Depends(READ_GUARD)]
Reviewer = Annotated[ApiKey, Depends(REVIEW_GUARD)]
CasePlatform = Annotated[ApiKey, Depends(CASES_GUARD)]
MlEngineer = Annotated[ApiKey, Depends(ML_GUARD)]
Admin = Annotated[ApiKey, Depends(ADMIN_GUARD)]
