"""Fixtures for the browser tests: a real JupyterLab server and Debian's chromium driven by Playwright.

Missing chromium or Playwright makes these tests FAIL with the command that installs them: CI installs them, and a
skipped end-to-end test would hide a broken widget.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from .lab import BrowserMissing, LabServer, check_browser, launch_browser


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: end-to-end test in a real JupyterLab and chromium")


@pytest.fixture(scope="session")
def lab_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    try:
        check_browser()
    except BrowserMissing as error:
        pytest.fail(str(error), pytrace=False)
    root = tmp_path_factory.mktemp("lab-root")
    server = LabServer.start(root, tmp_path_factory.mktemp("lab-home"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One chromium for the session (Playwright's sync API runs once per thread); independent of the lab server,
    so a test module with its own server (test_promote_e2e.py) does not start the shared one too."""
    try:
        check_browser()
    except BrowserMissing as error:
        pytest.fail(str(error), pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch_browser(playwright)
        try:
            yield browser
        finally:
            browser.close()
