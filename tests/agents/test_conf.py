"""The agents app's settings: the project's value when it has one, else the default."""

import re
from pathlib import Path

import pytest

from agents.conf import DEFAULTS, conf

AGENTS = Path(__file__).resolve().parents[2] / "agents"


def test_a_project_setting_wins_and_is_read_at_each_access(settings):
    """conf reads Django's setting at access time, so an override is seen at once."""
    settings.LLM_BUSY_RETRIES = 9
    assert conf.LLM_BUSY_RETRIES == 9
    settings.LLM_BUSY_RETRIES = 1
    assert conf.LLM_BUSY_RETRIES == 1


def test_a_missing_setting_takes_the_default(settings):
    """Without the project's setting, the default of agents.conf applies."""
    del settings.INTENT_TIMEOUT
    assert conf.INTENT_TIMEOUT == DEFAULTS["INTENT_TIMEOUT"] == 30.0


def test_an_unknown_name_is_an_error():
    """A misspelt setting fails instead of reading None."""
    with pytest.raises(AttributeError, match="LLM_BUSY_RETRYS"):
        conf.LLM_BUSY_RETRYS  # noqa: B018


def test_no_agents_module_writes_a_default_again():
    """No `getattr(settings, NAME, default)` in agents/: each default lives in conf."""
    pattern = re.compile(r"getattr\(\s*(django_)?settings\s*,\s*[\"'][A-Z_]+[\"']\s*,")
    offenders = [
        path.name
        for path in AGENTS.glob("*.py")
        if path.name != "conf.py" and pattern.search(path.read_text())
    ]
    assert offenders == []
