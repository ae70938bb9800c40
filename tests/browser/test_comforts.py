"""What users expect of a chat page, in Chromium: the message list is a log, messages
show their time on hover, a button brings a scrolled-up reader back to the newest text,
a counter warns near the length limit, code is coloured, Esc closes the phone sidebar;
light and dark."""

import re

import pytest
from playwright.sync_api import expect

from kobold_fake.server import Script
from tests.browser.pages import LAST_REPLY, log_in, send_and_finish

pytestmark = pytest.mark.browser

PHONE = {
    "viewport": {"width": 390, "height": 844},
    "is_mobile": True,
    "has_touch": True,
}


def test_the_comforts_of_the_page(chat_server, new_page, screenshot):
    chat_server.kobold.push(
        Script(tokens=[f"Line {i}\n" for i in range(60)]),
        Script(
            tokens=["Here:\n\n```python\n", "def add(a, b):\n", "    return a + b\n```"]
        ),
    )
    page = new_page()
    log_in(page, chat_server)
    messages = page.locator("#messages")
    expect(messages).to_have_attribute("role", "log")
    send_and_finish(page, "Sixty lines, please")
    reply = page.locator(LAST_REPLY)
    reply.hover()
    time = reply.locator(".msg-time")
    expect(time).to_have_text(re.compile(r"^\d{2}:\d{2}"))
    assert time.get_attribute("title")

    to_bottom = page.locator("#to-bottom")
    expect(to_bottom).to_be_hidden()
    messages.evaluate("list => list.scrollTo(0, 0)")
    expect(to_bottom).to_be_visible()
    screenshot(page, "17-scrolled-up")
    to_bottom.click()
    expect(to_bottom).to_be_hidden()
    at_end = "l => l.scrollHeight - l.scrollTop - l.clientHeight < 2"
    assert messages.evaluate(at_end)

    counter = page.locator("#char-count")
    page.fill("#input", "x" * 100)
    expect(counter).to_be_hidden()
    page.fill("#input", "x" * 15_000)
    expect(counter).to_have_text("15000 / 16000 characters")
    page.fill("#input", "x" * 16_001)
    expect(counter).to_have_class(re.compile("over"))
    page.fill("#input", "")

    # Code is coloured by the server (Pygments classes), the text left as written.
    send_and_finish(page, "Some Python")
    code = page.locator(LAST_REPLY).locator("pre code")
    expect(code).to_have_text("def add(a, b):\n    return a + b\n")
    keyword = code.locator("span.hl-k").first
    expect(keyword).to_have_text("def")
    color = "el => getComputedStyle(el).color"
    assert keyword.evaluate(color) != code.evaluate(color)
    screenshot(page, "18-desktop-light")

    dark = new_page(color_scheme="dark")
    log_in(dark, chat_server)
    expect(dark.locator(LAST_REPLY).locator("span.hl-k").first).to_be_visible()
    screenshot(dark, "19-desktop-dark")

    for scheme in ("light", "dark"):
        phone = new_page(color_scheme=scheme, **PHONE)
        log_in(phone, chat_server)
        screenshot(phone, f"21-phone-{scheme}")
        phone.click("#sidebar-toggle")
        expect(phone.locator("#sidebar")).to_be_visible()
        phone.keyboard.press("Escape")
        expect(phone.locator("#sidebar")).to_be_hidden()
        expect(phone.locator("#sidebar-toggle")).to_be_focused()
