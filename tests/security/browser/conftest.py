"""The browser tests' live server and Chromium (tests/browser/conftest.py), for the
security tests that need a real browser."""

from tests.browser.conftest import *  # noqa: F403
from tests.browser.conftest import (  # noqa: F401  (underscored: not in the star)
    _chromium_installed,
    _fresh_llm_client,
)
