"""The agents app's settings and their defaults, each default written once.

`conf.LLM_BUSY_RETRIES` is Django's setting of that name when the project defines it,
else the default below; read at each access, so tests may override settings.
"""

from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    "KOBOLDCPP_URL": "http://127.0.0.1:5001",
    "KOBOLDCPP_API": "auto",  # auto | native | openai
    "KOBOLDCPP_PASSWORD": "",
    # auto (chosen from the backend, see agents.template_choice) or a template name
    "KOBOLDCPP_CHAT_TEMPLATE": "auto",
    "LLM_FIRST_TOKEN_TIMEOUT": 60.0,
    "LLM_MAX_SILENCE": 5.0,
    "LLM_STREAM_TIMEOUT": 90.0,
    "LLM_BUSY_RETRIES": 4,
    "INTENT_DETECTION": "auto",  # auto | heuristic | llm
    "INTENT_TIMEOUT": 30.0,
    "BACKEND_CONCURRENCY": 1,
    "REPLY_PROFILES": {},
}


class AgentsSettings:
    """Attribute access to the settings in DEFAULTS; any other name is an error."""

    def __getattr__(self, name: str) -> Any:
        if name not in DEFAULTS:
            raise AttributeError(f"{name} is not a setting of the agents app")
        return getattr(settings, name, DEFAULTS[name])


conf = AgentsSettings()
