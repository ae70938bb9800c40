"""One conversation as a person uses it in Chromium: a second tab shows every message
once, the settings and the tab title follow a conversation made by its first message,
line breaks survive the end of a reply, and only the last reply offers Regenerate."""

import json
import re

import pytest
from playwright.sync_api import expect

from kobold_fake.server import Script
from tests.browser.pages import LAST_REPLY, log_in, send, send_and_finish

pytestmark = pytest.mark.browser

IMPORT = """async (document_) => {
  const form = new FormData();
  form.append("file", new Blob([JSON.stringify(document_)]), "long.json");
  const csrf = document.cookie.match(/csrftoken=([^;]+)/)[1];
  const answer = await fetch("/api/conversations/import", {
    method: "POST", body: form, headers: { "X-CSRFToken": csrf },
  });
  return (await answer.json()).id;
}"""


def test_a_second_tab_follows_the_conversation(chat_server, new_page, screenshot):
    chat_server.kobold.push(
        Script(tokens=["Roses are red,\n", "violets", " are blue."], delay=0.1),
        Script(tokens=["Second answer."]),
        Script(tokens=["Third answer."]),
    )
    page = new_page()
    log_in(page, chat_server)
    page.click(".new-chat")
    page.wait_for_url(re.compile(r"new=1"))
    page.wait_for_selector("body[data-ready]")
    page.click("#open-settings")
    expect(page.locator("#conv-settings-none")).to_be_visible()
    expect(page.locator("#conv-settings")).to_be_hidden()
    page.keyboard.press("Escape")

    send(page, "First line")
    reply = page.locator(LAST_REPLY)
    expect(reply).to_have_attribute("data-status", "streaming")
    expect(reply).to_have_attribute("data-status", "complete")
    body = reply.locator(".msg-body")
    expect(body.locator("br")).to_have_count(1)
    assert body.inner_text() == "Roses are red,\nviolets are blue."
    expect(page).to_have_title("First line · koboldchat")
    conversation_id = re.search(r"\?c=(\d+)", page.url).group(1)

    # The settings dialog now belongs to the conversation the message made.
    page.click("#open-settings")
    expect(page.locator("#conv-settings")).to_be_visible()
    expect(page.locator("#conv-settings-none")).to_be_hidden()
    export = page.locator(".export-links a[data-format=json]")
    assert f"/conversations/{conversation_id}/export" in export.get_attribute("href")
    page.fill("#set-system", "Answer in rhymes.")
    page.click("#conv-settings button[type=submit]")
    expect(page.locator("#conv-settings .form-status")).to_have_text("Saved")
    page.keyboard.press("Escape")

    # A second tab on the same conversation sees the next message and its reply.
    other = page.context.new_page()
    other.goto(f"{chat_server.url}/?c={conversation_id}")
    other.wait_for_selector("body[data-ready]")
    send_and_finish(page, "Second message")
    for tab in (page, other):
        expect(tab.locator("#messages .msg-user")).to_have_text(
            [re.compile("First line"), re.compile("Second message")]
        )
        expect(tab.locator(LAST_REPLY)).to_contain_text("Second answer.")
        expect(tab.locator(LAST_REPLY)).to_have_attribute("data-status", "complete")
        expect(tab.locator(".act-regen:visible")).to_have_count(1)
    assert "Answer in rhymes." in json.dumps(chat_server.kobold.generations[-1])
    screenshot(other, "15-second-tab")

    # Regenerate in the second tab replaces the reply in the first one too.
    other.locator(LAST_REPLY).locator(".act-regen").click()
    for tab in (other, page):
        expect(tab.locator(LAST_REPLY)).to_contain_text("Third answer.")
        expect(tab.locator("#messages .msg-assistant")).to_have_count(2)


def test_an_earlier_page_offers_no_regenerate(chat_server, new_page):
    """On the newest page only the last reply offers Regenerate, and the frame names
    it; a page of earlier messages offers neither Regenerate nor Continue."""
    page = new_page()
    log_in(page, chat_server)
    turns = [
        {"role": role, "content": f"{role} {i}", "finish_reason": "length"}
        for i in range(40)
        for role in ("user", "assistant")
    ]
    document_ = {"format": "koboldchat.conversation", "version": 1, "messages": turns}
    conversation_id = page.evaluate(IMPORT, document_)
    sent = []
    page.on(
        "websocket", lambda ws: ws.on("framesent", lambda payload: sent.append(payload))
    )
    page.goto(f"{chat_server.url}/?c={conversation_id}")
    page.wait_for_selector("body[data-ready]")
    expect(page.locator(".act-regen:visible")).to_have_count(1)
    expect(page.locator(".act-continue:visible")).to_have_count(1)
    last = page.locator(LAST_REPLY)
    expect(last).to_contain_text("assistant 39")
    clicked = int(last.get_attribute("data-id"))
    chat_server.kobold.push(Script(tokens=["Again."]))
    last.locator(".act-regen").click()
    expect(page.locator(LAST_REPLY)).to_contain_text("Again.")
    frames = [json.loads(f) for f in sent if '"regenerate"' in f]
    assert frames == [
        {
            "type": "regenerate",
            "conversation_id": conversation_id,
            "message_id": clicked,
        }
    ]
    page.click(".earlier a")
    expect(page.locator("#messages .msg")).to_have_count(30)
    expect(page.locator(".act-regen:visible, .act-continue:visible")).to_have_count(0)
