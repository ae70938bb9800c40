"""The reply as it streams, in Chromium against a live Daphne and the fake KoboldCpp:
growth, the waiting and reading states, stop, reload, switching, a dropped socket."""

import re
import time

import pytest
from playwright.sync_api import expect

from kobold_fake.server import Script
from tests.browser.pages import (
    LAST_REPLY,
    SLOW,
    WORDS,
    log_in,
    reply_text,
    send,
    send_and_finish,
    wait_for_text,
)

pytestmark = pytest.mark.browser


def test_reply_grows_token_by_token(chat_server, new_page, screenshot):
    """The reply is shown as it streams, longer and longer, then rendered at the end."""
    chat_server.kobold.push(Script(tokens=["**Bold**", *WORDS[:12]], delay=0.2))
    page = new_page()
    log_in(page, chat_server)
    send(page, "Tell me something")
    expect(page.locator("#messages .msg-user")).to_contain_text("Tell me something")
    lengths = []
    while page.locator(LAST_REPLY).get_attribute("data-status") != "complete":
        lengths.append(len(reply_text(page)))
        time.sleep(0.1)
        if len(lengths) == 15:
            screenshot(page, "03-streaming")
    grown = sorted(set(lengths))
    assert len(grown) >= 5, lengths
    assert lengths == sorted(lengths)
    body = page.locator(LAST_REPLY).locator(".msg-body")
    expect(body.locator("strong")).to_have_text("Bold")
    expect(body).to_contain_text("".join(WORDS[:12]).strip())
    page.locator(LAST_REPLY).hover()
    expect(page.locator(LAST_REPLY).locator(".msg-metrics")).to_contain_text("tokens")
    screenshot(page, "04-complete")


def test_reading_the_prompt_then_stop(chat_server, new_page, screenshot):
    """Before the first token the reply says so; Stop ends it and keeps the text."""
    chat_server.kobold.push(Script(tokens=WORDS, delay=0.3, first_token_delay=1.5))
    page = new_page()
    log_in(page, chat_server)
    send(page, "Write a long story")
    expect(page.locator(LAST_REPLY).locator(".msg-state")).to_have_text(
        "reading the prompt…"
    )
    screenshot(page, "05-reading-the-prompt")
    wait_for_text(page, 20)
    page.click("#stop")
    expect(page.locator(LAST_REPLY)).to_have_attribute(
        "data-status", "stopped", timeout=5000
    )
    kept = reply_text(page)
    full = "".join(WORDS).strip()
    assert kept.strip() and full.startswith(kept.strip())
    assert len(kept.strip()) < len(full)
    expect(page.locator("#send")).to_be_visible()
    screenshot(page, "06-stopped")


def test_reload_mid_reply_continues(chat_server, new_page):
    """A reload during a reply shows the text so far and keeps streaming to the end."""
    chat_server.kobold.push(SLOW)
    page = new_page()
    log_in(page, chat_server)
    send(page, "Count slowly")
    before = wait_for_text(page, 30)
    page.reload()
    expect(page.locator(LAST_REPLY)).to_have_attribute("data-status", "streaming")
    # The page renders the last checkpoint; the snapshot brings it up to date.
    assert wait_for_text(page, len(before) + 8).strip().startswith(before.strip())
    expect(page.locator(LAST_REPLY)).to_have_attribute(
        "data-status", "complete", timeout=20_000
    )
    assert reply_text(page).strip() == "".join(WORDS).strip()


def test_switching_conversations_mid_reply_loses_nothing(chat_server, new_page):
    """Leaving a conversation mid-reply and coming back shows the whole reply."""
    chat_server.kobold.push(Script(tokens=["Short", " answer."]), SLOW)
    page = new_page()
    log_in(page, chat_server)
    send_and_finish(page, "First conversation")
    page.click(".new-chat")
    send(page, "Second conversation")
    wait_for_text(page, 20)
    second_url = page.url
    page.click("#conversation-list .conv-link >> text=First conversation")
    expect(page.locator("#messages")).to_contain_text("Short answer.")
    expect(page.locator("#messages")).not_to_contain_text(
        "word0"
    )  # the other reply's tokens
    page.goto(second_url)
    expect(page.locator(LAST_REPLY)).to_have_attribute(
        "data-status", "complete", timeout=20_000
    )
    assert reply_text(page).strip() == "".join(WORDS).strip()


def test_dropped_socket_reconnects_and_resumes(chat_server, new_page, screenshot):
    """When the socket drops mid-reply the page reconnects, resumes and loses nothing."""
    chat_server.kobold.push(SLOW)
    page = new_page()
    sockets = []

    def through(ws):
        ws.connect_to_server()
        sockets.append(ws)

    page.route_web_socket(re.compile(r"/ws/chat/$"), through)
    log_in(page, chat_server)
    send(page, "Keep going")
    wait_for_text(page, 20)
    sockets[-1].close(code=1011, reason="network trouble")
    expect(page.locator("#notice")).to_contain_text("reconnecting")
    screenshot(page, "14-reconnecting")
    expect(page.locator("#notice")).to_be_hidden(timeout=10_000)
    assert len(sockets) >= 2
    expect(page.locator(LAST_REPLY)).to_have_attribute(
        "data-status", "complete", timeout=20_000
    )
    assert reply_text(page).strip() == "".join(WORDS).strip()


def test_a_stopping_server_brings_the_page_back_at_once(chat_server, new_page):
    """Closed with 4503 (the server process stops and hands its replies over), the page
    reconnects at once — not after its backoff of at least 250 ms — and resumes."""
    chat_server.kobold.push(SLOW)
    page = new_page()
    sockets, opened = [], []

    def through(ws):
        ws.connect_to_server()
        sockets.append(ws)
        opened.append(time.monotonic())

    page.route_web_socket(re.compile(r"/ws/chat/$"), through)
    log_in(page, chat_server)
    send(page, "Keep going")
    wait_for_text(page, 20)
    closed = time.monotonic()
    sockets[-1].close(code=4503, reason="Server restarting.")
    expect(page.locator(LAST_REPLY)).to_have_attribute(
        "data-status", "complete", timeout=20_000
    )
    assert len(opened) >= 2 and opened[1] - closed < 0.2, (closed, opened)
    assert reply_text(page).strip() == "".join(WORDS).strip()


def test_second_user_waits_with_a_position(chat_server, new_page, screenshot):
    """While one reply holds the backend, another user's reply says where it waits."""
    chat_server.kobold.push(
        Script(tokens=WORDS[:16], delay=0.25), Script(tokens=["Ok."])
    )
    alice, bob = new_page(), new_page()
    log_in(alice, chat_server, "alice")
    log_in(bob, chat_server, "bob")
    send(alice, "Long one please")
    wait_for_text(alice, 5)
    send(bob, "Me too")
    expect(bob.locator(LAST_REPLY).locator(".msg-state")).to_have_text(
        "waiting — position 1"
    )
    screenshot(bob, "15-waiting")
    expect(bob.locator(LAST_REPLY)).to_have_attribute(
        "data-status", "complete", timeout=20_000
    )
    expect(bob.locator(LAST_REPLY)).to_contain_text("Ok.")
