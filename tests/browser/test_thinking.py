"""A thinking model in Chromium: the thinking streams in a folded block above the
answer, says how long it took, and stays folded after a reload."""

import re

import pytest
from playwright.sync_api import expect

from kobold_fake.server import Script
from tests.browser.pages import LAST_REPLY, log_in, send

pytestmark = pytest.mark.browser


def test_thinking_is_folded_above_the_answer(chat_server, new_page, screenshot):
    tokens = ["<think>", "Let me ", "*think* ", "about ", "it.", "</think>"]
    tokens += ["The ", "**answer**", "."]
    chat_server.kobold.push(Script(tokens=tokens, delay=0.15))
    page = new_page()
    log_in(page, chat_server)
    send(page, "A question that needs thought")
    reply = page.locator(LAST_REPLY)
    thinking = reply.locator("details.msg-thinking")
    expect(thinking.locator("summary")).to_have_text("Thinking…", timeout=10_000)
    expect(reply).to_have_attribute("data-status", "complete", timeout=15_000)
    expect(thinking.locator("summary")).to_have_text(re.compile(r"Thought for \d+ s"))
    assert thinking.get_attribute("open") is None  # folded
    body = reply.locator(".msg-body")
    expect(body.locator("strong")).to_have_text("answer")
    expect(body).not_to_contain_text("Let me")
    thinking.locator("summary").click()
    expect(thinking.locator(".thinking-body em")).to_have_text("think")
    screenshot(page, "20-thinking-open")
    page.reload()
    again = page.locator(LAST_REPLY).locator("details.msg-thinking")
    expect(again.locator("summary")).to_have_text(re.compile(r"Thought for \d+ s"))
    assert again.get_attribute("open") is None
    expect(again.locator(".thinking-body")).to_contain_text("about it.")


def test_show_thinking_off_hides_it_in_this_conversation(chat_server, new_page):
    """The conversation setting: off hides every thinking block at once, and after a
    reload; the thinking stays stored. The effort setting is hidden: KoboldCpp 1.76
    does not bound thinking."""
    chat_server.kobold.push(
        Script(tokens=["<think>", "Hmm.", "</think>", "Yes."]),
        Script(tokens=["<think>", "Again.", "</think>", "Still yes."]),
    )
    page = new_page()
    log_in(page, chat_server)
    send(page, "Think first")
    reply = page.locator(LAST_REPLY)
    expect(reply).to_have_attribute("data-status", "complete")
    expect(reply.locator("details.msg-thinking")).to_be_visible()
    page.click("#open-settings")
    expect(page.locator("#effort-field")).to_be_hidden()
    page.uncheck("#conv-settings input[name=show_thinking]")
    page.click("#conv-settings button[type=submit]")
    expect(page.locator("#conv-settings .form-status")).to_have_text("Saved")
    page.keyboard.press("Escape")
    expect(reply.locator("details.msg-thinking")).to_be_hidden()
    send(page, "And again")
    expect(page.locator(LAST_REPLY)).to_have_attribute("data-status", "complete")
    expect(page.locator(LAST_REPLY).locator(".msg-body")).to_have_text("Still yes.")
    expect(page.locator("#messages details.msg-thinking")).to_have_count(2)
    for block in page.locator("#messages details.msg-thinking").all():
        expect(block).to_be_hidden()
    page.reload()
    page.wait_for_selector("body[data-ready]")
    for block in page.locator("#messages details.msg-thinking").all():
        expect(block).to_be_hidden()
