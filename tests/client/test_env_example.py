"""`.env.example` lists every key the client reads, each with a value the client accepts."""

from __future__ import annotations

import re
from pathlib import Path

from cortex_client import Settings
from cortex_client._config import KEYS, parse_dotenv

EXAMPLE = Path(__file__).resolve().parents[2] / ".env.example"
SETTING = re.compile(r"^# ([A-Z][A-Z0-9_]*)=(.*)$")


def example_settings() -> dict[str, str]:
    return {m[1]: m[2] for line in EXAMPLE.read_text().splitlines() if (m := SETTING.match(line))}


def test_every_key_the_client_reads_is_listed_once():
    listed = [m[1] for line in EXAMPLE.read_text().splitlines() if (m := SETTING.match(line))]
    assert sorted(listed) == sorted(KEYS)


def test_the_example_uncommented_is_a_valid_configuration(tmp_path):
    uncommented = "".join(f"{key}={value}\n" for key, value in example_settings().items())
    values, warnings = parse_dotenv(uncommented, ".env.example")
    assert warnings == []
    assert values == example_settings()
    (tmp_path / ".env").write_text(uncommented)
    settings = Settings.load(environ={}, cwd=tmp_path, home=tmp_path / "home", etc_dir=tmp_path / "etc")
    assert settings.warnings == ()
    assert settings.local_only
    assert set(settings.sources) == set(KEYS)
