"""The map page in headless Chromium: served by a real uvicorn on loopback, issues drawn,
one clicked, its evidence shown. Screenshots go to ``artifacts/`` (a CI artefact).

Debian's chromium at /usr/bin/chromium, driven by Playwright (never ``playwright install``).
Skips only where chromium is missing and CI is not set; in CI a missing browser fails.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.db import in_ci
from tests.fixtures.service import painted_flight, squares_detectors, truth_latlon
from xunjian.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def browser_path() -> Path:
    if not CHROMIUM.exists():
        if in_ci():
            pytest.fail(f"{CHROMIUM} is missing; CI must install Debian's chromium", pytrace=False)
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    return CHROMIUM


@pytest.fixture
def served(settings: Settings, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A processed flight behind a real uvicorn on loopback: (base URL, a reader's key)."""
    import json

    import uvicorn

    from xunjian.inspect.pipeline import Services, run_folder
    from xunjian.service.app import create_app
    from xunjian.service.processing import InlineRunner

    port = _free_port()
    lat, lon = truth_latlon("A")
    ring = [[lon - 0.01, lat - 0.01], [lon + 0.01, lat - 0.01], [lon + 0.01, lat + 0.01],
            [lon - 0.01, lat + 0.01], [lon - 0.01, lat - 0.01]]  # fmt: skip
    areas = tmp_path / "districts.geojson"
    areas.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": "渝中区"},
         "geometry": {"type": "Polygon", "coordinates": [ring]}}]}))  # fmt: skip
    config = settings.model_copy(update={"port": port, "areas_file": areas})
    services = Services.open(config)
    run_folder(services, painted_flight(tmp_path / "flight"), batch_id="map-test",
               detectors=squares_detectors())  # fmt: skip
    app = create_app(
        config, services=services, runner=InlineRunner(), detectors=squares_detectors()
    )
    key = app.state.xunjian.keys.create("map-reader", "ml_engineer")[1]
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", key
    finally:
        server.should_exit = True
        thread.join(10)
        app.state.xunjian.close()
        services.close()


def test_the_map_shows_issues_and_their_evidence(
    browser_path: Path, served: tuple[str, str]
) -> None:
    from playwright.sync_api import sync_playwright

    base, key = served
    ARTIFACTS.mkdir(exist_ok=True)
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(browser_path), args=FLAGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on(
                "requestfailed",
                lambda request: errors.append(f"request failed: {request.url}")
                if not request.url.startswith(base) else None,
            )  # fmt: skip
            page.goto(f"{base}/?key={key}")
            page.wait_for_selector("body[data-state=ready]", timeout=15_000)
            assert "key=" not in page.url  # the key is kept, not left in the address bar
            issues = page.locator("circle.issue")
            assert issues.count() == 3
            assert set(issues.evaluate_all("els => els.map(e => e.dataset.category)")) == {
                "road_damage"
            }
            page.wait_for_selector("body[data-footprints]", timeout=15_000)  # loaded after
            assert page.locator("polygon.footprint").count() == 4
            # 评价 for the view: per class, the total, and per configured district
            page.wait_for_selector("#evaluation[data-found='3']", timeout=15_000)
            total = page.locator("#evaluation-table tr[data-row=all] td").all_inner_texts()
            assert total[:2] == ["合计", "3"]
            assert (
                page.locator("#evaluation-table tr[data-row=pothole]").count()
                + page.locator(
                    "#evaluation-table tr[data-row^=long], #evaluation-table tr[data-row$=crack]"
                ).count()
                >= 1
            )
            district = page.locator("#evaluation-areas tr[data-row='area:渝中区'] td")
            assert district.all_inner_texts()[:2] == ["渝中区", "3"]
            page.screenshot(path=str(ARTIFACTS / "map.png"))

            issue_id = issues.first.get_attribute("data-issue-id")
            issues.first.click()
            page.wait_for_selector(f"#panel[data-issue-id='{issue_id}'][data-loaded=true]")
            page.wait_for_selector("#evidence[data-loaded=true]", timeout=10_000)
            size = page.locator("#evidence").evaluate(
                "img => [img.naturalWidth, img.naturalHeight]"
            )
            assert size[0] > 0 and size[1] > 0
            assert page.locator("#panel-history li").count() >= 1
            assert issue_id in page.locator("#panel-props").inner_text()
            page.screenshot(path=str(ARTIFACTS / "map-issue.png"))

            page.click("#lang-toggle")
            assert page.locator("#top h1").inner_text() == "Risk map"
            assert page.locator("#evaluation-table tr[data-row=all] td").first.inner_text() == "All"
            page.click("#view-toggle")
            assert page.locator("#heat").is_visible()
            page.screenshot(path=str(ARTIFACTS / "map-heat-en.png"))

            page.click("#feedback button[data-kind=confirm]")
            page.wait_for_function(
                "document.querySelector('#panel-history').textContent.includes('feedback')"
            )
        finally:
            browser.close()
    assert errors == []
    assert os.path.getsize(ARTIFACTS / "map-issue.png") > 10_000
