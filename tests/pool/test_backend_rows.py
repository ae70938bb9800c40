"""Backend rows: seeded from KOBOLDCPP_URL(S), shown in the admin with how each is
doing, and a password that is never shown back."""

import pytest

from chat.models import Backend
from chat.pool.registry import backends_seed

SECRET = "s3cret-never-shown"


def test_zero_configuration_is_one_backend_at_kobold_url(db, settings):
    settings.KOBOLDCPP_URL, settings.KOBOLDCPP_URLS = "http://127.0.0.1:5001", []
    settings.BACKEND_CONCURRENCY = 2
    (row,) = backends_seed()
    assert (row.url, row.slots, row.seeded) == ("http://127.0.0.1:5001", 2, True)
    assert backends_seed() == [row]  # seeded once


def test_kobold_urls_add_backends_and_a_url_that_leaves_is_not_used(db, settings):
    """A URL that leaves the settings is not used; its row stays, and is used again
    when they name it again. A process of other settings changes nothing for others."""
    settings.KOBOLDCPP_URL = "http://gpu1:5001"
    settings.KOBOLDCPP_URLS = ["http://gpu2:5001/", "http://gpu1:5001"]
    assert [r.name for r in backends_seed()] == ["gpu1:5001", "gpu2:5001"]
    settings.KOBOLDCPP_URLS = []
    assert [r.name for r in backends_seed()] == ["gpu1:5001"]
    assert Backend.objects.get(name="gpu2:5001").enabled
    settings.KOBOLDCPP_URL = "http://gpu2:5001"
    assert [r.name for r in backends_seed()] == ["gpu2:5001"]
    settings.KOBOLDCPP_URL = "http://gpu1:5001"
    assert [r.name for r in backends_seed()] == ["gpu1:5001"]


def test_two_processes_seeding_at_once_share_one_row(db, settings, monkeypatch):
    """Another process made the row between this one's read and its insert: the
    unique URL refuses the second, and the first is used (the reply goes on)."""
    from chat.pool import registry

    settings.KOBOLDCPP_URL, settings.KOBOLDCPP_URLS = "http://gpu1:5001", []
    made = Backend.objects.create(name="gpu1:5001", url="http://gpu1:5001", seeded=True)
    monkeypatch.setattr(registry, "_all_rows", lambda: [])  # read before it existed
    assert backends_seed() == [made]
    assert Backend.objects.count() == 1


def test_rows_added_in_the_admin_stay(db, settings):
    settings.KOBOLDCPP_URL, settings.KOBOLDCPP_URLS = "http://gpu1:5001", []
    Backend.objects.create(name="mine", url="http://gpu9:5001")
    assert {r.name for r in backends_seed()} == {"mine", "gpu1:5001"}


@pytest.fixture
def protected(make_fake, settings):
    fake = make_fake(password=SECRET)
    settings.KOBOLDCPP_URL, settings.KOBOLDCPP_URLS = fake.url, []
    return Backend.objects.create(
        name="locked", url=fake.url, api="native", password=SECRET
    )


def test_the_admin_never_shows_the_password(admin_client, protected):
    """Not in the list, not in the form; the list says it answers, and its model."""
    listing = admin_client.get("/admin/chat/backend/").content.decode()
    form = admin_client.get(
        f"/admin/chat/backend/{protected.pk}/change/"
    ).content.decode()
    assert SECRET not in listing and SECRET not in form
    protected.refresh_from_db()
    assert protected.reachable is True
    assert protected.model == "koboldcpp/SmolLM2-135M-Instruct.Q4_1"
    assert "SmolLM2-135M-Instruct" in listing


def test_an_empty_password_field_keeps_the_password(admin_client, protected):
    data = {"name": "locked", "url": protected.url, "api": "native", "slots": 2}
    data.update(enabled="on", password="")
    response = admin_client.post(f"/admin/chat/backend/{protected.pk}/change/", data)
    assert response.status_code == 302
    protected.refresh_from_db()
    assert protected.password == SECRET and protected.slots == 2
    admin_client.post(
        f"/admin/chat/backend/{protected.pk}/change/", {**data, "clear_password": "on"}
    )
    protected.refresh_from_db()
    assert protected.password == ""


def test_a_backend_that_does_not_answer_is_shown_unreachable(
    admin_client, settings, protected
):
    Backend.objects.create(name="gone", url="http://127.0.0.1:9", api="native")
    admin_client.get("/admin/chat/backend/")
    assert Backend.objects.get(name="gone").reachable is False


def test_the_admin_says_which_backend_wrote_a_reply(
    admin_client, admin_user, protected
):
    from chat.models import Conversation, Message

    conversation = Conversation.objects.create(owner=admin_user, title="t")
    reply = Message.objects.create(
        conversation=conversation, role="assistant", content="hi", backend=protected,
        backend_attempts="gone: backend_unreachable → locked", model="koboldcpp/Big-70B",
    )  # fmt: skip
    listing = admin_client.get("/admin/chat/message/").content.decode()
    assert "locked" in listing and "koboldcpp/Big-70B" in listing
    page = admin_client.get(f"/admin/chat/message/{reply.pk}/change/")
    assert "gone: backend_unreachable → locked" in page.content.decode()
