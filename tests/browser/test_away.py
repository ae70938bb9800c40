"""A reply that ends while the tab is hidden: "(1)" in the tab title until the tab is
seen again, and, for a user who opted in, a browser notification; the page installs
(a web app manifest)."""

import json
import re

import pytest
from playwright.sync_api import expect

from kobold_fake.server import Script
from tests.browser.pages import LAST_REPLY, log_in, send

pytestmark = pytest.mark.browser

# Chromium headless has no notification centre: record what the page asks to show.
FAKE_NOTIFICATIONS = """
window.shown = [];
class FakeNotification {
  static permission = "default";
  static async requestPermission() { FakeNotification.permission = "granted"; return "granted"; }
  constructor(title, options) { window.shown.push({ title, body: options.body }); }
}
window.Notification = FakeNotification;
"""
HIDE = """(hidden) => {
  Object.defineProperty(document, "visibilityState", {
    value: hidden ? "hidden" : "visible", configurable: true });
  document.dispatchEvent(new Event("visibilitychange"));
}"""


def test_a_reply_ready_while_away_shows_in_the_title_and_notifies(
    chat_server, new_page
):
    chat_server.kobold.push(Script(tokens=["Here ", "you ", "are."], delay=0.3))
    page = new_page()
    page.add_init_script(FAKE_NOTIFICATIONS)
    log_in(page, chat_server)
    page.click("#open-settings")
    page.check("#notify-away")
    expect(page.locator("#notify-away")).to_be_checked()
    page.keyboard.press("Escape")
    send(page, "Take your time")
    expect(page.locator(LAST_REPLY)).to_have_attribute("data-status", "streaming")
    # The badge follows the frames, not the 15 s health poll.
    expect(page.locator("#backend-status")).to_have_attribute("data-state", "busy")
    page.evaluate(HIDE, True)
    expect(page.locator(LAST_REPLY)).to_have_attribute("data-status", "complete")
    expect(page).to_have_title(re.compile(r"^\(1\) Take your time"))
    shown = page.evaluate("window.shown")
    assert shown == [{"title": "Your reply is ready", "body": "Here you are."}]
    page.evaluate(HIDE, False)
    expect(page).to_have_title("Take your time · koboldchat")
    expect(page.locator("#backend-status")).to_have_attribute("data-state", "online")


def test_the_page_has_a_web_app_manifest(chat_server, new_page):
    page = new_page()
    log_in(page, chat_server)
    href = page.locator("link[rel=manifest]").get_attribute("href")
    manifest = json.loads(page.request.get(f"{chat_server.url}{href}").text())
    assert manifest["start_url"] == "/" and manifest["display"] == "standalone"
    assert manifest["icons"]
