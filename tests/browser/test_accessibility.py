"""axe-core (through axe-playwright-python) on the login page, the chat page with a
conversation, the settings dialog and the phone layout: no serious or critical
violation, in light and dark colour schemes."""

import pytest
from axe_playwright_python.sync_playwright import Axe

from kobold_fake.server import Script
from tests.browser.pages import log_in, send_and_finish

pytestmark = pytest.mark.browser
BLOCKING = {"serious", "critical"}


def blocking_violations(page) -> list[str]:
    results = Axe().run(page)
    return [
        f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:3]}"
        for v in results.response["violations"]
        if v.get("impact") in BLOCKING
    ]


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_no_serious_violation_on_the_login_chat_and_settings_views(
    chat_server, new_page, scheme
):
    chat_server.kobold.push(Script(tokens=["A **bold** answer with `code`."]))
    page = new_page(color_scheme=scheme)
    page.goto(f"{chat_server.url}/")
    page.wait_for_selector("#id_username")
    assert blocking_violations(page) == []
    log_in(page, chat_server)
    send_and_finish(page, "Hello there")
    assert blocking_violations(page) == []
    page.click("#open-settings")
    page.wait_for_selector("#settings-dialog[open]")
    assert blocking_violations(page) == []


def test_no_serious_violation_on_a_phone(chat_server, new_page):
    chat_server.kobold.push(Script(tokens=["Short answer."]))
    page = new_page(viewport={"width": 390, "height": 844}, has_touch=True)
    log_in(page, chat_server)
    send_and_finish(page, "Hi from a phone")
    assert blocking_violations(page) == []
    page.click("#sidebar-toggle")
    assert blocking_violations(page) == []
