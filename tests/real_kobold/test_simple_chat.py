"""POST /api/simple-chat/ against a real KoboldCpp, on the native API and on `auto`."""

import pytest
from asgiref.sync import sync_to_async

from agents.llm_service import LLMService
from chat.models import Message
from tests.real_model.test_simple_chat import headers, post  # noqa: F401  (fixture)

pytestmark = [pytest.mark.real_kobold, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("api", ["native", "auto"])
async def test_coucou_gets_a_stored_reply(headers, settings, api):  # noqa: F811
    """{"message": "coucou"} answers a non-empty reply, the text stored; with
    KOBOLDCPP_API=auto the probe finds the native API of KoboldCpp."""
    settings.KOBOLDCPP_API = api
    response = await post({"message": "coucou"}, headers)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["reply"].strip()
    assert body["finish_reason"] in ("stop", "length")
    stored = await sync_to_async(Message.objects.get)(pk=body["message_id"])
    assert stored.status == "complete" and stored.content == body["reply"]
    assert await LLMService.from_settings().resolve_api() == "native"
