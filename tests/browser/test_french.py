"""The page in French on a server started from a fresh clone (no `make setup`, so no
compiled catalog): every state a person walks through shows no English."""

import re
import shutil

import pytest
from playwright.sync_api import expect

from kobold_fake.server import Script
from tests.browser.conftest import ROOT
from tests.browser.pages import LAST_REPLY, SLOW, log_in, send

pytestmark = pytest.mark.browser

ENGLISH = [
    "Log in", "Username", "Password", "Chat with", "Send", "Stop", "Copy", "Copied",
    "Regenerate", "Continue", "Edit & resend", "Settings", "Log out", "New conversation",
    "Search", "Ask anything", "Enter sends", "waiting", "writing", "reading the prompt",
    "tokens", "first token", "intent", "cut at the token limit", "stopped", "online",
    "offline", "checking", "busy", "System prompt", "Temperature", "Max tokens", "Save",
    "default", "Leave a field", "Export", "Usage", "today", "API keys", "Create key",
    "Key name", "No API keys", "Close", "Cancel", "Delete", "Rename", "The model server",
    "refused", "Something went wrong", "Go to it", "Stop it", "is writing",
]  # fmt: skip
PAGE_TEXT = """() => {
  const parts = [document.title, document.body.innerText];
  for (const el of document.querySelectorAll("[placeholder], [title], [aria-label]")) {
    if (el.closest("template") || el.closest("[hidden]")) continue;
    parts.push(el.getAttribute("placeholder"), el.title, el.getAttribute("aria-label"));
  }
  return parts.filter(Boolean).join("\\n");
}"""


@pytest.fixture
def server_env(tmp_path) -> dict[str, str]:
    """A locale folder with the .po files only, as in a fresh clone."""
    locale = tmp_path / "locale"
    for po in (ROOT / "locale").glob("*/LC_MESSAGES/*.po"):
        target = locale / po.relative_to(ROOT / "locale")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(po, target)
    return {
        "DJANGO_SETTINGS_MODULE": "tests.browser.settings_uncompiled",
        "KOBOLDCHAT_TEST_LOCALE": str(locale),
    }


def english_in(page) -> list[str]:
    text = page.evaluate(PAGE_TEXT)
    return [word for word in ENGLISH if re.search(rf"\b{re.escape(word)}\b", text)]


def test_every_state_of_the_page_is_french(chat_server, new_page, screenshot):
    """Login, the empty chat, a reply waiting, streaming, cut at the limit, its actions
    and metrics, the settings, an error: no English string anywhere."""
    chat_server.kobold.push(
        Script(tokens=[f" mot{i}" for i in range(12)], delay=0.25, finish_reason="length"),
        Script(fault="http_401"),
        SLOW,
    )  # fmt: skip
    page = new_page(locale="fr-FR")
    page.goto(f"{chat_server.url}/")
    assert english_in(page) == []
    log_in(page, chat_server)
    expect(page.locator("#backend-status")).to_have_attribute("data-state", "online")
    assert english_in(page) == []

    send(page, "Bonjour")
    reply = page.locator(LAST_REPLY)
    expect(reply).to_have_attribute("data-status", "streaming")
    assert english_in(page) == []
    expect(reply).to_have_attribute("data-finish-reason", "length")
    reply.hover()
    expect(reply.locator(".msg-metrics")).to_contain_text("jetons")
    assert english_in(page) == []
    reply.locator(".act-copy-reply").click()
    assert english_in(page) == []

    page.click("#open-settings")
    expect(page.locator("#usage-today")).not_to_be_empty()
    assert english_in(page) == []
    screenshot(page, "09b-french-settings")
    page.keyboard.press("Escape")

    send(page, "Encore ?")
    expect(page.locator(LAST_REPLY).locator(".msg-error")).to_be_visible()
    assert english_in(page) == []
    screenshot(page, "09c-french-error")

    send(page, "Une longue histoire")
    expect(page.locator(LAST_REPLY)).to_have_attribute("data-status", "streaming")
    page.click(".new-chat")
    page.wait_for_url(re.compile(r"new=1"))
    send(page, "Salut")
    expect(page.locator("#notice .stop-running")).to_be_visible()
    assert english_in(page) == []
    screenshot(page, "09d-french-busy")
