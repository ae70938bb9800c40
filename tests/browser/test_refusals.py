"""Refusals in Chromium: a reply running in another conversation is named, with "Go to
it" and "Stop it"; a refused first message leaves nothing; a refused Regenerate keeps
the reply and says why, without reloading the page."""

import re

import pytest
from playwright.sync_api import expect

from kobold_fake.server import Script
from tests.browser.pages import LAST_REPLY, SLOW, log_in, send, wait_for_text

pytestmark = pytest.mark.browser

BUSY = re.compile(r"A reply is being written in “Slow story”")


def test_busy_elsewhere_says_where_and_undoes_nothing_else(
    chat_server, new_page, screenshot
):
    chat_server.kobold.push(SLOW, Script(tokens=["Hi", " there."]), SLOW)
    page = new_page()
    log_in(page, chat_server)
    send(page, "Slow story")
    wait_for_text(page, 10)
    first_id = re.search(r"\?c=(\d+)", page.url).group(1)  # made by the message
    conversations = page.locator("#conversation-list .conv")
    expect(conversations).to_have_count(1)

    # A first message in a new conversation while that reply runs: refused, and said
    # where; the text is given back and no empty conversation is left behind.
    page.click(".new-chat")
    send(page, "Hello there")
    notice = page.locator("#notice")
    expect(notice).to_have_text(BUSY)
    expect(page.locator("#input")).to_have_value("Hello there")
    expect(page.locator("#messages .msg")).to_have_count(0)
    screenshot(page, "14-busy-elsewhere")
    page.reload()
    expect(conversations).to_have_count(1)
    send(page, "Hello there")
    expect(notice).to_have_text(BUSY)

    # "Stop it" stops the running reply; then the message goes through.
    notice.locator(".stop-running").click()
    expect(notice).to_be_hidden()
    send(page, "Hello there")
    expect(page.locator(LAST_REPLY)).to_have_attribute("data-status", "complete")
    expect(conversations).to_have_count(2)

    # A second tab starts a reply in the first conversation (stopped: it can be
    # continued, or written again).
    other = page.context.new_page()
    other.goto(f"{chat_server.url}/?c={first_id}")
    stopped = other.locator(LAST_REPLY)
    expect(stopped).to_have_attribute("data-status", "stopped")
    expect(stopped.locator(".act-continue")).to_be_visible()
    stopped.locator(".act-regen").click()
    expect(stopped).to_have_attribute("data-status", "streaming")

    # Regenerate here is refused: the reply stays as it was, the page is not reloaded.
    page.evaluate("window.notReloaded = true")
    reply = page.locator(LAST_REPLY)
    reply.locator(".act-regen").click()
    expect(notice).to_have_text(BUSY)
    expect(reply).to_have_attribute("data-status", "complete")
    expect(reply.locator(".msg-body")).to_have_text("Hi there.")
    expect(reply.locator(".msg-state")).to_have_text("")
    assert page.evaluate("window.notReloaded") is True

    # "Go to it" opens the conversation where the reply is being written.
    notice.locator(".go-to-running").click()
    expect(page).to_have_url(re.compile(rf"\?c={first_id}$"))
    expect(page.locator(LAST_REPLY)).to_have_attribute("data-status", "streaming")
