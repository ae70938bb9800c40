"""Fixtures of the conversation-tree tests (the chat ones: users, keys)."""

from tests.chat.conftest import make_key, make_user  # noqa: F401
