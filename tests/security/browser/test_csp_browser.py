"""Finding 7 in Chromium: the chat page (a reply streamed, the settings dialog opened)
and the login page work under the policy and report no violation."""

import pytest
from playwright.sync_api import expect

from tests.browser.pages import LAST_REPLY, log_in, send_and_finish

pytestmark = pytest.mark.browser

RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(`${event.violatedDirective} ${event.blockedURI}`);
});
"""


def watched_page(new_page):
    page = new_page()
    page.add_init_script(RECORD_VIOLATIONS)
    console = []
    page.on(
        "console",
        lambda message: (
            console.append(message.text)
            if "Content Security Policy" in message.text
            else None
        ),
    )
    return page, console


def violations(page) -> list[str]:
    return page.evaluate("window.__cspViolations")


def test_login_and_chat_pages_raise_no_violation(chat_server, new_page):
    page, console = watched_page(new_page)
    response = page.goto(f"{chat_server.url}/accounts/login/")
    assert "default-src 'self'" in response.headers["content-security-policy"]
    assert violations(page) == []
    log_in(page, chat_server)
    send_and_finish(page, "Hello under a policy")
    expect(page.locator(LAST_REPLY)).to_have_attribute("data-status", "complete")
    page.click("#open-settings")
    expect(page.locator("#usage-today")).to_contain_text("today: 1 reply")
    assert violations(page) == [] and console == []


def test_the_policy_is_enforced(chat_server, new_page):
    """An inline script (what an injection would add) is blocked and reported."""
    page, _ = watched_page(new_page)
    log_in(page, chat_server)
    page.evaluate(
        """() => {
        const script = document.createElement("script");
        script.textContent = "window.__injected = true";
        document.body.append(script);
    }"""
    )
    page.wait_for_function("window.__cspViolations.length > 0")
    assert page.evaluate("window.__injected === undefined")
    assert any(v.startswith("script-src") for v in violations(page))
