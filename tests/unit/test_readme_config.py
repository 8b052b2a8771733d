"""The README's configuration tables name every setting the service reads, and nothing it does not."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from statemgr.config import Settings

README = Path(__file__).resolve().parents[2] / "README.md"


def _documented() -> set[str]:
    rows = [line for line in README.read_text().splitlines() if line.startswith("| STATEMGR_")]
    return {re.match(r"\| (STATEMGR_[A-Z0-9_]+) ", row).group(1) for row in rows}  # type: ignore[union-attr]


def test_every_setting_is_in_the_readme_table() -> None:
    settings = {f"STATEMGR_{field.name.upper()}" for field in dataclasses.fields(Settings)}
    assert settings - _documented() == set(), "settings missing from the README's configuration table"
    assert _documented() - settings == set(), "README rows for settings that do not exist"
