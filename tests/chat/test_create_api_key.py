"""`manage.py create_api_key`: a working key printed once, clear errors otherwise."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from chat.models import ApiKey

pytestmark = pytest.mark.django_db


def _run(*args: str) -> str:
    out = StringIO()
    call_command("create_api_key", *args, stdout=out, stderr=StringIO())
    return out.getvalue().strip()


def test_prints_a_key_that_authenticates_the_user(django_user_model):
    """The printed key is the only stdout line and ApiKey.user_for resolves it."""
    alice = django_user_model.objects.create_user("alice", password="pw-alice-123")
    raw = _run("alice", "--name", "laptop")
    assert ApiKey.user_for(raw) == alice
    assert ApiKey.objects.get(user=alice).name == "laptop"


def test_only_a_hash_of_the_key_is_stored(django_user_model):
    """The raw key appears in no column of the stored row."""
    django_user_model.objects.create_user("bob", password="pw-bob-12345")
    raw = _run("bob")
    key = ApiKey.objects.get()
    assert raw not in (key.key_hash, key.prefix, key.name)
    assert key.key_hash == ApiKey.hash_key(raw)


def test_unknown_user_fails_with_its_name():
    """A missing user is a CommandError naming it, and no key is made."""
    with pytest.raises(CommandError, match="nobody"):
        _run("nobody")
    assert not ApiKey.objects.exists()


def test_inactive_user_gets_no_key(django_user_model):
    """An inactive account cannot be given a key."""
    django_user_model.objects.create_user(
        "carol", password="pw-carol-123", is_active=False
    )
    with pytest.raises(CommandError, match="inactive"):
        _run("carol")
