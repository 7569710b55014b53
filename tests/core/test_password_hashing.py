"""argon2id cost comes from settings: cheap in test mode only, RFC 9106 cost otherwise."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from argon2 import extract_parameters
from pydantic import ValidationError

from core.security import hash_password, verify_password
from core.settings import (
    PASSWORD_HASH_PRODUCTION,
    PASSWORD_HASH_TEST,
    Mode,
    PasswordHashCost,
    Settings,
)
from tests.conftest import Configure


def _cost(stored: str) -> PasswordHashCost:
    used = extract_parameters(stored)
    return PasswordHashCost(used.time_cost, used.memory_cost, used.parallelism)


def test_the_test_suite_hashes_cheaply(configure: Configure, tmp_path: Path) -> None:
    configure(mode="test", data_dir=str(tmp_path))
    stored = hash_password("correct horse battery")
    assert _cost(stored) == PASSWORD_HASH_TEST
    assert verify_password(stored, "correct horse battery")
    assert not verify_password(stored, "wrong horse battery")


def test_outside_test_mode_hashes_cost_the_rfc_profile(
    configure: Configure, tmp_path: Path
) -> None:
    configure(mode="test", data_dir=str(tmp_path))
    made_in_tests = hash_password("correct horse battery")
    configure(mode="development")
    assert _cost(hash_password("correct horse battery")) == PASSWORD_HASH_PRODUCTION
    # The hash carries its own parameters, so a cheap one still verifies (and only it).
    assert verify_password(made_in_tests, "correct horse battery")
    assert not verify_password(made_in_tests, "wrong horse battery")


@pytest.mark.parametrize(
    ("name", "value"),
    [("password_hash_time_cost", 1), ("password_hash_memory_kib", 8)],
)
def test_cheap_parameters_are_refused_outside_test_mode(
    tmp_path: Path, name: str, value: int
) -> None:
    cheap: dict[str, Any] = {name: value}
    with pytest.raises(ValidationError, match="allowed in test mode only"):
        Settings(data_dir=tmp_path, mode=Mode.development, **cheap)
    allowed = Settings(data_dir=tmp_path, mode=Mode.test, **cheap)
    assert getattr(allowed, name) == value


def test_memory_must_cover_every_lane(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="8 KiB per lane"):
        Settings(
            data_dir=tmp_path,
            mode=Mode.test,
            password_hash_memory_kib=8,
            password_hash_parallelism=4,
        )
