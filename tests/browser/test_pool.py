"""Two backends serving different models, in Chromium: the badge sums them up, the
settings offer the model of the conversation, and once chosen its replies come from
the backend that serves it."""

import pytest
from playwright.sync_api import expect

from kobold_fake.server import FakeKobold, Script
from tests.browser.pages import LAST_REPLY, log_in, send, send_and_finish

pytestmark = pytest.mark.browser
BIG = "koboldcpp/Big-70B"


@pytest.fixture
def big():
    server = FakeKobold(model=BIG)
    server.default_script = Script(tokens=["From ", "the ", "big ", "one."])
    server.start()
    yield server
    server.stop()


@pytest.fixture
def server_env(big):
    return {"KOBOLDCPP_URLS": big.url}


def test_the_model_of_a_conversation_is_chosen_in_its_settings(
    chat_server, big, new_page
):
    page = new_page()
    log_in(page, chat_server)
    badge = page.locator("#backend-status")
    expect(badge).to_have_attribute("data-state", "online")
    expect(badge).to_contain_text(BIG.removeprefix("koboldcpp/"))
    send_and_finish(page, "hello")  # a conversation to set
    page.reload()  # the health check has told the server which model each serves
    page.wait_for_selector("body[data-ready]")
    page.click("#open-settings")
    picker = page.locator("#conv-settings select[name=model]")
    expect(picker.locator("option")).to_have_count(3)  # any, and the two models
    picker.select_option(BIG)
    page.click("#conv-settings button[type=submit]")
    expect(page.locator("#conv-settings .form-status")).to_have_text("Saved")
    page.keyboard.press("Escape")
    before = len(big.generations)
    send(page, "who are you?")
    reply = page.locator(LAST_REPLY)
    expect(reply).to_have_attribute("data-status", "complete")
    expect(reply.locator(".msg-body")).to_have_text("From the big one.")
    assert len(big.generations) == before + 1
    page.reload()
    page.wait_for_selector("body[data-ready]")
    page.click("#open-settings")
    expect(page.locator("#conv-settings select[name=model]")).to_have_value(BIG)
