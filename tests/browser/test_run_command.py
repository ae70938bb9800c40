"""The page as `make run` serves it (production mode over plain HTTP), in Chromium: the
login works without https, styles load, and a stale link gets a friendly page with a
way back, not Django's debug page."""

import pytest
from playwright.sync_api import expect

from tests.chat.test_launcher import _launch, _read_until, _stop

pytestmark = [pytest.mark.browser, pytest.mark.multiprocess]


def test_a_stale_link_gets_a_friendly_page(tmp_path, fake_kobold, new_page, screenshot):
    process, port = _launch(
        tmp_path,
        KOBOLDCPP_URL=fake_kobold.url,
        DJANGO_SUPERUSER_USERNAME="boss",
        DJANGO_SUPERUSER_PASSWORD="a-long-pass-123",
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _read_until(process, "koboldchat is ready")
        page = new_page()
        page.goto(f"{base}/")
        page.fill("#id_username", "boss")
        page.fill("#id_password", "a-long-pass-123")
        page.click("button[type=submit]")
        page.wait_for_selector("body[data-ready]")
        assert page.url == f"{base}/"  # logged in over plain HTTP, no https redirect
        styled = "getComputedStyle(document.querySelector('.topbar')).display"
        assert page.evaluate(styled) == "flex"  # the stylesheet was served

        page.goto(f"{base}/?c=999999")
        expect(page.locator("h2")).to_have_text("This page does not exist")
        expect(page.locator("body")).not_to_contain_text("DEBUG")
        screenshot(page, "16-not-found")
        page.click("text=Back to the chat")
        page.wait_for_selector("body[data-ready]")
        assert page.url == f"{base}/"
    finally:
        assert _stop(process) == 0
