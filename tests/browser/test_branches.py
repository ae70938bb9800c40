"""Alternatives and branches in Chromium: Regenerate twice gives "‹ 3/3 ›" whose
alternatives switch in place (buttons and ←/→) and stay chosen after a reload; an edited
message forks the conversation and both branches can be reached."""

import pytest
from playwright.sync_api import expect

from kobold_fake.server import Script
from tests.browser.pages import LAST_REPLY, log_in, send_and_finish

pytestmark = pytest.mark.browser
USER_MESSAGES = "#messages .msg-user"


def finished(page):
    expect(page.locator(LAST_REPLY)).to_have_attribute("data-status", "complete")


def bodies(page, selector="#messages .msg") -> list[str]:
    return page.locator(f"{selector} .msg-body").all_inner_texts()


def test_regenerated_replies_are_alternatives_to_switch(chat_server, new_page):
    chat_server.kobold.push(
        Script(tokens=["First answer."]),
        Script(tokens=["Second answer."]),
        Script(tokens=["Third answer."]),
    )
    page = new_page()
    log_in(page, chat_server)
    send_and_finish(page, "Tell me something")
    reply = page.locator(LAST_REPLY)
    expect(reply.locator(".msg-branch")).to_be_hidden()
    for text in ("Second answer.", "Third answer."):
        reply.locator(".act-regen").click()
        expect(reply.locator(".msg-body")).to_have_text(text)
        finished(page)
    nav = reply.locator(".msg-branch")
    expect(nav.locator(".branch-pos")).to_have_text("3/3")
    page.evaluate("window.sameDocument = true")  # gone if the page reloads

    nav.locator(".branch-prev").click()
    expect(reply.locator(".msg-body")).to_have_text("Second answer.")
    expect(reply.locator(".branch-pos")).to_have_text("2/3")
    reply.focus()
    page.keyboard.press("ArrowLeft")
    expect(reply.locator(".msg-body")).to_have_text("First answer.")
    expect(reply.locator(".branch-pos")).to_have_text("1/3")
    assert page.evaluate("window.sameDocument") is True
    assert bodies(page) == ["Tell me something", "First answer."]

    page.reload()
    page.wait_for_selector("body[data-ready]")
    expect(page.locator(LAST_REPLY).locator(".msg-body")).to_have_text("First answer.")
    expect(page.locator(LAST_REPLY).locator(".branch-pos")).to_have_text("1/3")
    page.locator(LAST_REPLY).focus()
    page.keyboard.press("ArrowRight")
    expect(page.locator(LAST_REPLY).locator(".msg-body")).to_have_text("Second answer.")


def test_an_edit_forks_and_both_branches_can_be_reached(chat_server, new_page):
    chat_server.kobold.push(
        Script(tokens=["A1"]), Script(tokens=["A2"]), Script(tokens=["A3"])
    )
    page = new_page()
    log_in(page, chat_server)
    send_and_finish(page, "Q1")
    send_and_finish(page, "Q2")
    first = page.locator(USER_MESSAGES).first
    first.locator(".act-edit").click()
    page.fill("#input", "Q1 edited")
    page.press("#input", "Enter")
    expect(page.locator(USER_MESSAGES)).to_have_count(1)
    finished(page)
    assert bodies(page) == ["Q1 edited", "A3"]
    edited = page.locator(USER_MESSAGES).first
    expect(edited.locator(".branch-pos")).to_have_text("2/2")
    # The prompt of the edit held neither the old message nor its branch.
    prompt = chat_server.kobold.generations[-1]["prompt"]
    assert "Q1 edited" in prompt and "Q2" not in prompt and "A1" not in prompt

    edited.locator(".branch-prev").click()
    expect(page.locator(USER_MESSAGES)).to_have_count(2)
    assert bodies(page) == ["Q1", "A1", "Q2", "A2"]
    expect(page.locator(USER_MESSAGES).first.locator(".branch-pos")).to_have_text("1/2")
