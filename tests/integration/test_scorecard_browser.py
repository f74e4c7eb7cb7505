"""The scorecard as a person sees it: rendered by a real headless Chromium, DOM read back, screenshot taken.

Set ``MLGATE_UPDATE_SCREENSHOT=1`` to refresh ``docs/img/scorecard.png`` from this run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.fixtures.scorecard import read_page, sample_scorecard

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def chromium(tmp_path: Path, *args: str) -> str:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install -y chromium)")
    argv = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--no-first-run", "--disable-component-update", "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
            *args]
    return subprocess.run(argv, capture_output=True, text=True, check=True, timeout=120, cwd=tmp_path).stdout


@pytest.fixture(scope="module")
def page_file(tmp_path_factory) -> Path:
    from mlgate.core.scorecard import render_scorecard

    directory = tmp_path_factory.mktemp("browser")
    path = directory / "scorecard.html"
    path.write_text(render_scorecard(**sample_scorecard(directory)))
    return path


def test_the_browser_shows_the_verdict_and_every_gate_with_its_status(page_file):
    page = read_page(chromium(page_file.parent, "--dump-dom", page_file.as_uri()))
    assert page.texts["verdict"].strip() == "✖ BLOCKED"
    assert "code.dependencies is blocked" in page.texts["verdict-reasons"]
    statuses = {row[0]: row[1] for row in page.tables["gates"][1:]}
    assert statuses == {"code.dependencies": "✖ BLOCKED", "data.expectations": "✔ PASSED",
                        "data.integrity": "✔ PASSED", "data.pii": "✔ PASSED", "model.artifact": "✔ PASSED",
                        "model.robustness": "✔ PASSED", "model.training": "✔ PASSED",
                        "registry.promote": "? MISSING"}
    assert len(page.tables["coverage"]) == 7  # header + the six STRIDE categories


def test_screenshot_of_the_scorecard(page_file):
    shot = page_file.parent / "scorecard.png"
    chromium(page_file.parent, f"--screenshot={shot}", "--window-size=1280,1600", page_file.as_uri())
    data = shot.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 50_000  # a blank page compresses to a few kB
    if os.environ.get("MLGATE_UPDATE_SCREENSHOT") == "1":
        shutil.copyfile(shot, ROOT / "docs" / "img" / "scorecard.png")
