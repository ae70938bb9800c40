"""Finding 9: no daily quotas. CHAT_DAILY_REPLY_LIMIT and CHAT_DAILY_TOKEN_LIMIT (0: no
limit), overridden per user and per group in the admin, are checked on the usage ledger
wherever a reply is started; a refused reply gets `quota_exceeded` with the seconds to
the reset; GET /api/usage and the page show the day's usage."""

from datetime import timedelta

import pytest
from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.contrib.auth.models import Group
from django.test import AsyncClient, Client
from django.utils import timezone, translation

from chat.errors import REGISTRY, ChatError
from chat.models import GroupQuota, Message, UsageEntry, UserQuota
from chat.replies import exchanges
from chat.usage.quotas import day_bounds
from tests.chat.conftest import open_socket

pytestmark = pytest.mark.django_db


def start(user, text="hi"):
    """Start a reply and settle it at once (no job runs here)."""
    result = exchanges.exchange_create(user=user, text=text)
    Message.objects.pending().update(status=Message.Status.COMPLETE, content="ok")
    return result


def spend(user, tokens: int, when=None) -> None:
    UsageEntry.objects.create(
        user=user,
        kind="message",
        prompt_tokens=tokens // 2,
        completion_tokens=tokens - tokens // 2,
        created_at=when or timezone.now(),
    )


def refusal(user) -> ChatError:
    with pytest.raises(ChatError) as caught:
        exchanges.exchange_create(user=user, text="one more")
    return caught.value


def test_the_daily_reply_limit_refuses_with_the_time_to_the_reset(settings, make_user):
    settings.CHAT_DAILY_REPLY_LIMIT = 2
    user = make_user()
    start(user), start(user)
    with translation.override("en"):  # a French request earlier may have left "fr"
        error = refusal(user)
    assert error.code == "quota_exceeded" and error.status == 429
    until_midnight = (day_bounds()[1] - timezone.now()).total_seconds()
    assert abs(error.retry_after - until_midnight) <= 2
    assert "2 replies a day" in error.message and "00:00" in error.message


def test_the_daily_token_limit_counts_prompt_and_reply_tokens(settings, make_user):
    settings.CHAT_DAILY_TOKEN_LIMIT = 1000
    user = make_user()
    spend(user, 999)
    start(user)  # 999 < 1000: allowed
    spend(user, 1)
    assert refusal(user).code == "quota_exceeded"


def test_yesterday_does_not_count(settings, make_user):
    settings.CHAT_DAILY_REPLY_LIMIT = 1
    user = make_user()
    spend(user, 10, when=day_bounds()[0] - timedelta(seconds=1))
    start(user)


def test_zero_means_no_limit(settings, make_user):
    settings.CHAT_DAILY_REPLY_LIMIT = settings.CHAT_DAILY_TOKEN_LIMIT = 0
    user = make_user()
    spend(user, 10**7)
    start(user)


def test_a_users_own_quota_wins_then_the_most_generous_group(settings, make_user):
    settings.CHAT_DAILY_REPLY_LIMIT = 1
    user = make_user()
    start(user)
    few, many = Group.objects.create(name="few"), Group.objects.create(name="many")
    GroupQuota.objects.create(group=few, daily_replies=2)
    GroupQuota.objects.create(group=many, daily_replies=3)
    user.groups.add(few, many)
    start(user), start(user)  # 3 with the "many" group
    assert refusal(user).code == "quota_exceeded"
    UserQuota.objects.create(user=user, daily_replies=0)  # this user: no limit
    start(user)


@pytest.mark.parametrize("how", ["regenerate", "continue"])
def test_quotas_apply_to_every_way_of_starting(settings, make_user, how):
    settings.CHAT_DAILY_REPLY_LIMIT = 1
    user = make_user()
    conversation, _, _ = start(user)
    with pytest.raises(ChatError) as caught:
        if how == "regenerate":
            exchanges.regeneration_create(user=user, conversation_id=conversation.pk)
        else:
            exchanges.continuation_prepare(user=user, conversation_id=conversation.pk)
    assert caught.value.code == "quota_exceeded"


@pytest.mark.django_db(transaction=True)
async def test_the_rest_api_answers_429_with_retry_after(settings, make_user, make_key):
    settings.CHAT_DAILY_REPLY_LIMIT = 1
    user = await sync_to_async(make_user)()
    await sync_to_async(start)(user)
    raw = await sync_to_async(make_key)(user)
    async with ThreadSensitiveContext():  # as Daphne runs a request
        response = await AsyncClient().post(
            "/api/simple-chat/",
            {"message": "hi"},
            content_type="application/json",
            headers={"Authorization": f"Bearer {raw}"},
        )
    assert response.status_code == 429
    assert response.json()["code"] == "quota_exceeded"
    assert int(response["Retry-After"]) >= 1


@pytest.mark.django_db(transaction=True)
async def test_the_socket_error_carries_retry_after(settings, make_user, make_key):
    settings.CHAT_DAILY_REPLY_LIMIT = 1
    user = await sync_to_async(make_user)()
    await sync_to_async(start)(user)
    comm = await open_socket(await sync_to_async(make_key)(user))
    await comm.send_to(text_data="one more")
    error = await comm.receive_json_from(timeout=5)
    assert error["type"] == "error" and error["code"] == "quota_exceeded"
    assert error["retry_after"] >= 1
    await comm.disconnect()


def test_the_code_is_in_the_registry_translated(settings):
    assert REGISTRY["quota_exceeded"].status == 429
    with translation.override("fr"):
        assert "quota quotidien" in str(REGISTRY["quota_exceeded"].message)


def test_usage_endpoint_shows_the_day(settings, make_user, make_key):
    """GET /api/usage: today's counts, the limits, the reset and a sentence."""
    settings.CHAT_DAILY_TOKEN_LIMIT = 50_000
    user = make_user()
    for _ in range(12):
        spend(user, 700)
    api = Client(headers={"Authorization": f"Bearer {make_key(user)}"})
    body = api.get("/api/usage").json()
    assert (body["replies"], body["tokens"]) == (12, 8400)
    assert (body["reply_limit"], body["token_limit"]) == (0, 50_000)
    assert body["resets_at"] == day_bounds()[1].isoformat()
    assert body["summary"] == "today: 12 replies, 8,400 of 50,000 tokens"
    french = Client(
        headers={"Authorization": f"Bearer {make_key(user)}", "accept-language": "fr"}
    ).get("/api/usage")
    assert french.json()["summary"].startswith("aujourd’hui : 12 réponses")


def test_usage_needs_a_login():
    assert Client().get("/api/usage").status_code == 401


def test_the_admin_edits_quotas_and_shows_usage_per_day(make_user):
    """A quota inline on the user and the group; the ledger summed per user and day."""
    staff = Client()
    staff.force_login(make_user(is_staff=True, is_superuser=True))
    ada = make_user("ada")
    spend(ada, 300)
    spend(ada, 200)
    page = staff.get(f"/admin/auth/user/{ada.pk}/change/").content.decode()
    assert "quota-0-daily_replies" in page or "id_quota-0-daily_replies" in page
    group = Group.objects.create(name="students")
    assert (
        "daily_tokens"
        in staff.get(f"/admin/auth/group/{group.pk}/change/").content.decode()
    )
    daily = staff.get("/admin/chat/dailyusage/")
    assert daily.status_code == 200
    row = daily.context["daily_rows"][0]
    assert (row["user__username"], row["replies"], row["tokens"]) == ("ada", 2, 500)
    assert staff.get("/admin/chat/usageentry/").status_code == 200
