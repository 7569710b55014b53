"""Documentation that cannot drift from the code."""

from __future__ import annotations

from core.settings import Settings
from tests.helpers import ROOT


def test_every_setting_is_documented() -> None:
    page = (ROOT / "docs" / "configuration.md").read_text()
    missing = [
        f"POCKETCINEMA_{name.upper()}"
        for name in Settings.model_fields
        if f"`POCKETCINEMA_{name.upper()}`" not in page
    ]
    assert missing == [], f"add these to docs/configuration.md: {missing}"


def test_readme_quick_start_has_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "./run serve" in readme
    assert "./run test" in readme
    ci = (ROOT / ".ci" / "run").read_text()
    assert "./run test" in ci, "CI must run the README's test command"
