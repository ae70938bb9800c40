"""REST API keys: made from the browser session, the raw key answered once, revocable,
and never usable to make more keys."""

import pytest
from django.test import Client

from chat.models import ApiKey


@pytest.fixture
def browser(make_user):
    client = Client()
    client.force_login(make_user("ada"))
    return client


def test_create_answers_the_raw_key_once_and_it_works(browser):
    """POST gives the key; it authenticates; the list never shows it again."""
    created = browser.post(
        "/api/keys", {"name": "script"}, content_type="application/json"
    )
    assert created.status_code == 201
    raw = created.json()["key"]
    assert raw.startswith("kc_") and created.json()["is_active"]
    listed = browser.get("/api/keys").json()
    assert [k["name"] for k in listed] == ["script"]
    assert "key" not in listed[0] and "key_hash" not in listed[0]
    assert raw not in browser.get("/api/keys").content.decode()
    script = Client(headers={"Authorization": f"Bearer {raw}"})
    assert script.get("/api/conversations").status_code == 200


def test_revoke_stops_the_key(browser):
    """DELETE revokes: the key is refused afterwards and listed as inactive."""
    created = browser.post("/api/keys", {}, content_type="application/json").json()
    assert browser.delete(f"/api/keys/{created['id']}").status_code == 204
    script = Client(headers={"Authorization": f"Bearer {created['key']}"})
    assert script.get("/api/conversations").status_code == 401
    assert browser.get("/api/keys").json()[0]["is_active"] is False


def test_cannot_revoke_another_users_key(browser, make_user):
    """Someone else's key id is a 404 and stays active."""
    key, _ = ApiKey.generate(user=make_user("bob"))
    assert browser.delete(f"/api/keys/{key.pk}").status_code == 404
    key.refresh_from_db()
    assert key.is_active


def test_an_api_key_cannot_manage_keys(make_user, make_key):
    """Keys are managed from the browser session only: a key gets 401 here."""
    script = Client(headers={"Authorization": f"Bearer {make_key(make_user())}"})
    assert script.get("/api/keys").status_code == 401
    assert (
        script.post("/api/keys", {}, content_type="application/json").status_code == 401
    )
