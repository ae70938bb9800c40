"""The rest of the chat page in Chromium: login, inert model output, error messages,
French, the phone layout, the sidebar, settings and API keys, reply actions."""

import json
import re

import pytest
from playwright.sync_api import expect

from kobold_fake.server import Script
from tests.browser.pages import LAST_REPLY, log_in, send, send_and_finish, wait_for_text

pytestmark = pytest.mark.browser


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
    assert (
        messages.locator("script, img, [onerror], a[href^='javascript']").count() == 0
    )
    expect(messages).to_contain_text("<script>alert('s')</script>")
    screenshot(page, "07-xss-inert")
    page.reload()
    expect(page.locator(LAST_REPLY)).to_have_attribute("data-status", "complete")
    assert (
        messages.locator("script, img, [onerror], a[href^='javascript']").count() == 0
    )
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
    page = new_page(
        viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    log_in(page, chat_server)
    send_and_finish(page, "Hi from a phone")
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


def test_sidebar_rename_search_and_delete(chat_server, new_page, screenshot):
    """Conversations are renamed in place, found by content, deleted after a confirm."""
    chat_server.kobold.push(
        Script(tokens=["About pumpkins."]), Script(tokens=["Trains."])
    )
    page = new_page()
    log_in(page, chat_server)
    send_and_finish(page, "Tell me about autumn")
    page.click(".new-chat")
    send_and_finish(page, "And travel?")
    items = page.locator("#conversation-list .conv")
    expect(items).to_have_count(2)

    first = items.filter(has_text="Tell me about autumn")
    first.hover()
    first.locator(".act-rename").click()
    page.fill(".conv-rename", "Seasons")
    page.press(".conv-rename", "Enter")
    expect(items.filter(has_text="Seasons")).to_have_count(1)

    page.fill("#search", "pumpkins")
    expect(items).to_have_count(1)
    expect(items.locator(".conv-link")).to_have_text("Seasons")
    page.fill("#search", "")
    expect(items).to_have_count(2)

    doomed = items.filter(has_text="Seasons")
    doomed.hover()
    doomed.locator(".act-delete").click()
    expect(page.locator("#confirm-dialog")).to_be_visible()
    screenshot(page, "12-delete-confirm")
    page.click("#confirm-ok")
    expect(items).to_have_count(1)
    page.reload()
    expect(items).to_have_count(1)
    expect(items.locator(".conv-link")).to_have_text("And travel?")


def test_settings_panel_and_api_keys(chat_server, new_page, screenshot):
    """The settings reach the next generation; a key is shown once, then revoked."""
    page = new_page()
    log_in(page, chat_server)
    send_and_finish(page, "Hello")
    page.reload()
    page.wait_for_selector("body[data-ready]")
    page.click("#open-settings")
    page.fill("#set-system", "Answer like a pirate.")
    page.fill("input[name=temperature]", "0.3")
    page.fill("input[name=max_tokens]", "55")
    page.click("#conv-settings button[type=submit]")
    expect(page.locator("#conv-settings .form-status")).to_have_text("Saved")

    page.fill("#key-create input[name=name]", "ci-script")
    page.click("#key-create button[type=submit]")
    expect(page.locator("#key-raw")).to_have_value(re.compile(r"^kc_"))
    expect(page.locator("#key-list")).to_contain_text("ci-script")
    screenshot(page, "13-settings")
    page.locator("#key-list li", has_text="ci-script").locator("button").click()
    page.click("#confirm-ok")
    expect(page.locator("#key-list li", has_text="ci-script")).to_have_class(
        re.compile("revoked")
    )
    page.keyboard.press("Escape")

    send_and_finish(page, "Where is the treasure?")
    body = chat_server.kobold.generations[-1]
    assert "Answer like a pirate." in json.dumps(body)
    assert body.get("temperature") == pytest.approx(0.3)
    assert body.get("max_length", body.get("max_tokens")) == 55


def test_continue_regenerate_and_edit(chat_server, new_page):
    """Continue extends a reply cut at the limit; Regenerate replaces the last reply;
    Edit & resend puts a message back in the box."""
    chat_server.kobold.push(
        Script(tokens=["Once upon", " a time"], finish_reason="length"),
        Script(tokens=[" there was", " a fox."]),
        Script(tokens=["A different story."]),
    )
    page = new_page()
    log_in(page, chat_server)
    send(page, "Tell a story")
    reply = page.locator(LAST_REPLY)
    expect(reply).to_have_attribute("data-finish-reason", "length")
    expect(reply.locator(".msg-state")).to_have_text("cut at the token limit")
    reply.locator(".act-continue").click()
    expect(reply).to_contain_text("Once upon a time there was a fox.", timeout=10_000)
    expect(reply).to_have_attribute("data-status", "complete")
    expect(reply.locator(".act-continue")).to_be_hidden()

    reply.locator(".act-regen").click()
    expect(page.locator(LAST_REPLY)).to_have_text(re.compile("A different story."))
    expect(page.locator("#messages .msg-assistant")).to_have_count(1)

    page.locator("#messages .msg-user .act-edit").click()
    expect(page.locator("#input")).to_have_value("Tell a story")


def test_code_blocks_are_copyable(chat_server, new_page):
    """A fenced code block in a reply gets a Copy button that copies just the code."""
    chat_server.kobold.push(
        Script(tokens=["Try:\n\n```python\n", "print('hi')\n", "```\n"])
    )
    page = new_page()
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    log_in(page, chat_server)
    send(page, "Some code please")
    block = page.locator(LAST_REPLY).locator("pre")
    expect(block.locator("code")).to_have_text("print('hi')\n")
    block.locator(".code-copy").click()
    expect(block.locator(".code-copy")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == "print('hi')\n"
