"""`pocketcinema demo` end to end on the embedded default, twice, as a new user runs it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.helpers import ROOT

# The demo is the embedded default's tour: it runs in that profile and is left out of the
# services one (tests/conftest.py deselects `embedded_only`).
pytestmark = [pytest.mark.slow, pytest.mark.embedded_only]

FAST_LADDER = {
    "name": "demo-ci",
    "preset": "superfast",
    "native_rung_min_gain": 1000,
    "rungs": [
        {"name": "540p", "height": 540, "bitrate_kbps": 1200},
        {"name": "270p", "height": 270, "bitrate_kbps": 300},
    ],
    # CI time: no per-title probe, no quality scores (tests/transcoding/test_quality.py).
    "per_title": None,
    "quality": None,
}


def _report(output: str) -> dict[str, str]:
    block = output.split("Box office for", 1)[1]
    return {
        name: value.strip()
        for name, value in re.findall(
            r"^\s{4}(tickets sold|gross|views started|qualified views|studio payable)\s+(.+)$",
            block,
            re.M,
        )
    }


def test_demo_walks_the_whole_journey_and_numbers_grow(tmp_path: Path) -> None:
    ladder = tmp_path / "ladder.json"
    ladder.write_text(json.dumps(FAST_LADDER))
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("POCKETCINEMA_")},
        "POCKETCINEMA_DATA_DIR": str(tmp_path / "var"),  # a fresh checkout's ./var
        "POCKETCINEMA_LADDER_PROFILE_FILE": str(ladder),  # CI time: two rungs, a fast preset
        "POCKETCINEMA_LOG_JSON": "false",
    }
    runs = []
    for _ in range(2):
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "pocketcinema",
                "demo",
                "--seconds",
                "12",
                "--port",
                str(free_port()),
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        runs.append(done.stdout)
    first, second = _report(runs[0]), _report(runs[1])
    assert "transcoded in" in runs[0]
    assert "already transcoded" in runs[1]
    assert "from France: not listed" in runs[0]
    assert "288 frames decoded" in runs[0]
    assert (first["tickets sold"], first["gross"], first["qualified views"]) == (
        "1",
        "12.99 USD",
        "1",
    )
    assert (second["tickets sold"], second["gross"], second["qualified views"]) == (
        "2",
        "25.98 USD",
        "2",
    )
    payable_1 = float(first["studio payable"].split()[0])
    payable_2 = float(second["studio payable"].split()[0])
    assert 0 < payable_1 < 12.99
    assert payable_2 == pytest.approx(2 * payable_1, abs=0.02)
    assert "/play" in runs[1]
