"""The chat page in Debian's Chromium against a live Daphne and the fake KoboldCpp:
streaming, stop, reload and switching mid-reply, inert model output, French, phone."""

import time

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PASSWORD
from tests.fake_kobold import Script

pytestmark = pytest.mark.browser

WORDS = [f" word{i}" for i in range(40)]
SLOW = Script(tokens=WORDS, delay=0.25)
LAST_REPLY = "#messages .msg-assistant >> nth=-1"


def log_in(page, server, username="alice"):
    page.goto(f"{server.url}/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("body[data-ready]")  # the module script is wired up


def send(page, text):
    page.fill("#input", text)
    page.press("#input", "Enter")


def reply_text(page) -> str:
    return page.locator(LAST_REPLY).locator(".msg-body").inner_text()


def wait_for_text(page, at_least: int, timeout: float = 15.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = reply_text(page) if page.locator(LAST_REPLY).count() else ""
        if len(text) >= at_least:
            return text
        time.sleep(0.05)
    raise AssertionError(f"reply stayed at {reply_text(page)!r}")


def test_log_in_lands_on_the_chat_page(chat_server, new_page, screenshot):
    """Anonymous visitors get the login form; logging in opens the chat."""
    page = new_page()
    page.goto(f"{chat_server.url}/")
    assert "/accounts/login/" in page.url
    screenshot(page, "01-login")
    log_in(page, chat_server)
    expect(page.locator("#input")).to_be_focused()
    expect(page.locator("#backend-status")).to_have_attribute("data-state", "online")
    screenshot(page, "02-empty-chat")


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
    expect(page.locator(LAST_REPLY).locator(".msg-state")).to_have_text("reading the prompt…")
    screenshot(page, "05-reading-the-prompt")
    wait_for_text(page, 20)
    page.click("#stop")
    expect(page.locator(LAST_REPLY)).to_have_attribute("data-status", "stopped", timeout=5000)
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
    assert len(reply_text(page)) >= len(before) - 1
    expect(page.locator(LAST_REPLY)).to_have_attribute(
        "data-status", "complete", timeout=20_000
    )
    assert reply_text(page).strip() == "".join(WORDS).strip()


def test_switching_conversations_mid_reply_loses_nothing(chat_server, new_page):
    """Leaving a conversation mid-reply and coming back shows the whole reply."""
    chat_server.kobold.push(Script(tokens=["Short", " answer."]), SLOW)
    page = new_page()
    log_in(page, chat_server)
    send(page, "First conversation")
    expect(page.locator(LAST_REPLY)).to_have_attribute("data-status", "complete")
    page.click(".new-chat")
    send(page, "Second conversation")
    wait_for_text(page, 20)
    second_url = page.url
    page.click("#conversation-list .conv-link >> text=First conversation")
    expect(page.locator("#messages")).to_contain_text("Short answer.")
    expect(page.locator("#messages")).not_to_contain_text("word")
    page.goto(second_url)
    expect(page.locator(LAST_REPLY)).to_have_attribute(
        "data-status", "complete", timeout=20_000
    )
    assert reply_text(page).strip() == "".join(WORDS).strip()


def test_model_markup_stays_inert(chat_server, new_page, screenshot):
    """Script tags, onerror handlers and javascript: links from the model do nothing."""
    payload = [
        "<script>alert('s')</script>",
        " <img src=x onerror=alert('i')>",
        " [click](javascript:alert('l'))",
        ' <a href="javascript:alert(1)">x</a>',
    ]
    chat_server.kobold.push(Script(tokens=payload * 3, delay=0.15))
    page = new_page()
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    log_in(page, chat_server)
    send(page, "Show me some HTML")
    wait_for_text(page, 40)
    assert page.locator("#messages script, #messages img").count() == 0
    expect(page.locator(LAST_REPLY)).to_have_attribute("data-status", "complete")
    messages = page.locator("#messages")
    assert messages.locator("script, img, [onerror], a[href^='javascript']").count() == 0
    expect(messages).to_contain_text("<script>alert('s')</script>")
    screenshot(page, "07-xss-inert")
    page.reload()
    expect(page.locator(LAST_REPLY)).to_have_attribute("data-status", "complete")
    assert messages.locator("script, img, [onerror], a[href^='javascript']").count() == 0
    assert dialogs == []


def test_error_code_gets_a_readable_message(chat_server, new_page, screenshot):
    """A refused password upstream shows the backend_auth sentence on the reply."""
    chat_server.kobold.push(Script(fault="http_401"))
    page = new_page()
    log_in(page, chat_server)
    send(page, "Hello?")
    expect(page.locator(LAST_REPLY).locator(".msg-error")).to_contain_text(
        "refused our password"
    )
    expect(page.locator("#send")).to_be_visible()
    screenshot(page, "08-error")


def test_french_interface(chat_server, new_page, screenshot):
    """A French browser gets French pages; the switch goes back to English."""
    page = new_page(locale="fr-FR")
    page.goto(f"{chat_server.url}/")
    expect(page.locator("button[type=submit]").first).to_have_text("Se connecter")
    log_in(page, chat_server)
    expect(page.locator("#send")).to_have_text("Envoyer")
    expect(page.locator(".new-chat")).to_contain_text("Nouvelle conversation")
    screenshot(page, "09-french")
    page.select_option("#lang-select", "en")
    expect(page.locator("#send")).to_have_text("Send")


def test_phone_layout_hides_the_sidebar(chat_server, new_page, screenshot):
    """On a narrow screen the sidebar stays hidden until its button opens it."""
    page = new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    log_in(page, chat_server)
    send(page, "Hi from a phone")
    expect(page.locator(LAST_REPLY)).to_have_attribute("data-status", "complete")
    sidebar = page.locator("#sidebar")
    expect(sidebar).not_to_be_visible()
    page.wait_for_selector("body[data-ready]")  # the module script is wired up
    screenshot(page, "10-phone")
    page.click("#sidebar-toggle")
    expect(sidebar).to_be_visible()
    expect(page.locator("#sidebar-toggle")).to_have_attribute("aria-expanded", "true")
    page.wait_for_timeout(300)  # the slide-in transition
    screenshot(page, "11-phone-sidebar")
    page.click("#sidebar-backdrop", position={"x": 370, "y": 400})
    expect(sidebar).not_to_be_visible()
