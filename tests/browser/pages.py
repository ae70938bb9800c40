"""Helpers the browser tests share: logging in, sending, reading the last reply."""

import time

from playwright.sync_api import expect

from kobold_fake.server import Script
from tests.browser.conftest import PASSWORD

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
    page.wait_for_selector("body[data-ready]")
    page.fill("#input", text)
    page.press("#input", "Enter")


def send_and_finish(page, text):
    send(page, text)
    expect(page.locator(LAST_REPLY)).to_have_attribute("data-status", "complete")


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
