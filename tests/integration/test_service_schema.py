"""schemathesis against the OpenAPI schema, in process, with an admin key: no server errors.

Every operation gets generated requests — valid ones and invalid ones — for a bounded number
of examples each; any 5xx fails and names the operation and the request. It runs against the
ASGI app on the embedded defaults with seeded issues, so the issue routes have data to
serialise. (schemathesis's own pytest loader does not run under pytest 9, so the operations
are driven here with their hypothesis strategies.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from pydantic import SecretStr
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode

from tests.fixtures.service import squares_detectors
from xunjian.bench.service import seed_issues
from xunjian.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]
EXAMPLES = 25


def test_no_operation_answers_with_a_server_error(tmp_path: Path) -> None:
    from xunjian.inspect.pipeline import Services
    from xunjian.service.app import create_app
    from xunjian.service.processing import InlineRunner

    config = Settings(
        data_dir=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'x.db'}",
        webhook_secret=SecretStr("schema-secret"),
        max_upload_bytes=1024 * 1024,
    )
    services = Services.open(config)
    seed_issues(services.catalog.engine, 40, seed=7, spread_deg=0.01)
    app = create_app(
        config, services=services, detectors=squares_detectors(), runner=InlineRunner()
    )
    key = app.state.xunjian.keys.create("schema-admin", "admin")[1]
    headers = {"Authorization": f"Bearer {key}"}
    try:
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) >= 20
        for operation in operations:
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                _exercise(operation, mode, headers)
    finally:
        app.state.xunjian.close()
        services.close()


def _exercise(operation: Any, mode: GenerationMode, headers: dict[str, str]) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        case.call_and_validate(headers=dict(headers), checks=[not_a_server_error])

    try:
        run()
    except Unsatisfiable:
        assert mode is GenerationMode.NEGATIVE  # nothing to get wrong: no parameters, no body
    except Exception as exc:
        raise AssertionError(f"{operation.label} ({mode.value}): {exc}") from exc
