"""The chat app's fixtures (users, API keys, a fresh backend queue) for the security
tests."""

from tests.chat.conftest import _fresh_backend_queue, make_key, make_user  # noqa: F401
