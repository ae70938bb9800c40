"""Fixtures of the agents tests."""

import pytest
from pydantic_ai import models


@pytest.fixture(autouse=True)
def _no_model_requests():
    """No agents test reaches a model unless it says so (override_allow_model_requests)."""
    saved = models.ALLOW_MODEL_REQUESTS
    models.ALLOW_MODEL_REQUESTS = False
    yield
    models.ALLOW_MODEL_REQUESTS = saved
