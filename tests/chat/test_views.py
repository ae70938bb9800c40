"""The chat page and the login page, through Django's test client; and the pure-Python
translation compiler they rely on for French."""

import gettext
import io
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils import translation
from django.utils.translation.reloader import translation_file_changed

from chat import tree
from chat.errors import error_message
from chat.management.commands.compile_translations import build_mo, parse_po
from chat.models import Conversation, Message
from chat.views import ui_strings

pytestmark = pytest.mark.django_db

XSS_IMG = '<img src=x onerror="alert(1)">'
XSS_SCRIPT = "<script>alert('owned')</script>"


@pytest.fixture(scope="module", autouse=True)
def compiled_translations():
    """French .mo files compiled by our command, and Django's catalogs reloaded."""
    call_command("compile_translations", stdout=io.StringIO())
    translation_file_changed(sender=None, file_path=Path("django.mo"))
    yield


@pytest.fixture
def user(make_user):
    return make_user("alice")


@pytest.fixture
def client_in(client, user):
    client.force_login(user)
    return client


def conversation(owner, title="Trip", turns=()):
    conv = Conversation.objects.create(owner=owner, title=title)
    for role, content, *status in turns:
        Message.objects.create(
            conversation=conv,
            role=role,
            content=content,
            status=status[0] if status else Message.Status.COMPLETE,
        )
    return conv


def page_config(response) -> dict:
    match = re.search(
        r'<script id="chat-config" type="application/json">(.*?)</script>',
        response.content.decode(),
        re.S,
    )
    return json.loads(match.group(1))


def start_tags(body: str) -> list[tuple[str, dict]]:
    """Every element the browser would build from `body`, with its attributes."""
    tags = []

    class Collector(HTMLParser):
        def handle_starttag(self, tag, attrs):
            tags.append((tag, dict(attrs)))

    Collector().feed(body)
    return tags


def test_anonymous_is_sent_to_login(client):
    """An anonymous visitor of / lands on the login page, with / as next."""
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/"


def test_login_page_logs_in_and_goes_to_the_chat(client, make_user):
    """The login form posts to Django's view and then lands on the chat page."""
    make_user("bob")
    assert "csrfmiddlewaretoken" in client.get("/accounts/login/").content.decode()
    response = client.post(
        "/accounts/login/", {"username": "bob", "password": "pw-bob"}, follow=True
    )
    assert response.redirect_chain[-1][0] == "/"
    assert b'id="composer"' in response.content


def test_own_conversation_rendered_with_markdown(client_in, user):
    """?c= selects the conversation; replies are markdown rendered on the server."""
    conv = conversation(
        user, "Pasta", [("user", "How long?"), ("assistant", "About **ten** minutes.")]
    )
    body = client_in.get(f"/?c={conv.pk}").content.decode()
    assert "How long?" in body
    assert "About <strong>ten</strong> minutes." in body
    assert page_config(client_in.get(f"/?c={conv.pk}"))["conversationId"] == conv.pk


def test_most_recent_conversation_is_the_default(client_in, user):
    """Without ?c= the page opens the most recently updated conversation."""
    conversation(user, "Old one", [("user", "first question")])
    recent = conversation(user, "New one", [("user", "latest question")])
    response = client_in.get("/")
    assert page_config(response)["conversationId"] == recent.pk
    assert "latest question" in response.content.decode()


def test_new_shows_a_blank_conversation(client_in, user):
    """?new=1 shows no conversation (the first message creates one)."""
    conversation(user, "Existing", [("user", "hello")])
    response = client_in.get("/?new=1")
    assert page_config(response)["conversationId"] is None
    assert 'id="empty-chat"' in response.content.decode()


def test_another_users_conversation_is_404(client_in, make_user):
    """Someone else's conversation id answers 404, like an unknown one."""
    other = conversation(make_user("mallory"), "Secret plans", [("user", "the code")])
    response = client_in.get(f"/?c={other.pk}")
    assert response.status_code == 404
    assert b"the code" not in response.content


def test_malformed_conversation_id_is_404(client_in):
    """A non-numeric ?c= is a 404, not a server error."""
    assert client_in.get("/?c=abc").status_code == 404


def test_sidebar_lists_only_own_conversations(client_in, user, make_user):
    """Other users' titles never reach the sidebar."""
    conversation(user, "Mine")
    conversation(make_user("eve"), "Not yours")
    body = client_in.get("/").content.decode()
    assert "Mine" in body
    assert "Not yours" not in body


def test_search_filters_the_sidebar_by_content(client_in, user):
    """?q= keeps conversations whose title or messages contain the term."""
    conversation(user, "Cooking", [("user", "risotto with saffron")])
    conversation(user, "Travel", [("user", "trains in Italy")])
    body = client_in.get("/?q=saffron").content.decode()
    sidebar = body.split('id="conversation-list"')[1].split("</ul>")[0]
    assert "Cooking" in sidebar
    assert "Travel" not in sidebar


def test_stored_xss_is_escaped(client_in, user):
    """Markup in titles, user messages and replies never reaches the page as markup."""
    conv = conversation(
        user, XSS_SCRIPT, [("user", XSS_IMG), ("assistant", f"{XSS_SCRIPT} {XSS_IMG}")]
    )
    body = client_in.get(f"/?c={conv.pk}").content.decode()
    tags = start_tags(body)
    assert not [tag for tag, _ in tags if tag == "img"]
    assert [attrs for tag, attrs in tags if tag == "script" and "src" not in attrs] == [
        {"id": "chat-config", "type": "application/json"}
    ]
    assert not [
        attrs for _, attrs in tags if any(name.startswith("on") for name in attrs)
    ]
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in body


def test_pending_reply_rendered_as_plain_text(client_in, user):
    """A reply still streaming is shown as text so far, with its status for the script."""
    conv = conversation(
        user,
        "Live",
        [("user", "hi"), ("assistant", "**partial", Message.Status.STREAMING)],
    )
    body = client_in.get(f"/?c={conv.pk}").content.decode()
    assert 'data-status="streaming"' in body
    assert '<div class="msg-body plain">**partial</div>' in body


def test_error_reply_shows_a_readable_message(client_in, user):
    """A reply stored with an error code shows that code's sentence."""
    conv = conversation(user, "Broken", [("user", "hi")])
    Message.objects.create(
        conversation=conv,
        role="assistant",
        status=Message.Status.ERROR,
        error_code="backend_unreachable",
    )
    body = client_in.get(f"/?c={conv.pk}").content.decode()
    assert error_message("backend_unreachable") in body


def test_page_has_no_inline_script(client_in, user):
    """Every script is an external module or a JSON data block (CSP friendly)."""
    conversation(user, "Any", [("user", "hello")])
    body = client_in.get("/").content.decode()
    for tag, attrs in start_tags(body):
        assert not [name for name in attrs if name.startswith("on")], (tag, attrs)
        if tag == "script":
            assert "src" in attrs or attrs.get("type") == "application/json", attrs


def test_french_from_accept_language(client_in, user):
    """A browser asking for French gets the French page and French script strings."""
    conversation(user, "Voyage")
    response = client_in.get("/", HTTP_ACCEPT_LANGUAGE="fr-FR,fr;q=0.9")
    body = response.content.decode()
    assert '<html lang="fr">' in body
    assert "Nouvelle conversation" in body
    assert "Envoyer" in body
    assert page_config(response)["strings"]["reading"] == "lecture du prompt…"


def test_every_script_string_has_a_french_translation():
    """No string the JavaScript shows is left in English in French."""
    same_in_both = {"Assistant", "Conversations", "Message", "%(index)s/%(count)s"}
    with translation.override("en"):
        english = ui_strings()
    with translation.override("fr"):
        french = ui_strings()
    untranslated = [
        key
        for key, text in english.items()
        if french[key] == text and text not in same_in_both
    ]
    assert untranslated == []


def test_compiled_catalog_matches_gettext():
    """The .mo we write is read back by gettext with plurals and contexts intact."""
    po = (
        'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=UTF-8\\n"\n'
        '"Plural-Forms: nplurals=2; plural=(n > 1);\\n"\n\n'
        'msgid "Send"\nmsgstr "Envoyer"\n\n'
        'msgctxt "verb"\nmsgid "Stop"\nmsgstr "Arrêter"\n\n'
        'msgid "%(n)s token"\nmsgid_plural "%(n)s tokens"\n'
        'msgstr[0] "%(n)s jeton"\nmsgstr[1] "%(n)s jetons"\n\n'
        '#, fuzzy\nmsgid "Maybe"\nmsgstr "Peut-être"\n\n'
        'msgid "Multi"\nmsgstr ""\n"ligne "\n"\\"deux\\"\\n"\n'
    )
    catalog = gettext.GNUTranslations(io.BytesIO(build_mo(parse_po(po))))
    assert catalog.gettext("Send") == "Envoyer"
    assert catalog.pgettext("verb", "Stop") == "Arrêter"
    assert catalog.ngettext("%(n)s token", "%(n)s tokens", 3) == "%(n)s jetons"
    assert catalog.ngettext("%(n)s token", "%(n)s tokens", 1) == "%(n)s jeton"
    assert catalog.gettext("Maybe") == "Maybe"
    assert catalog.gettext("Multi") == 'ligne "deux"\n'


def test_long_conversation_shows_its_last_page_with_a_link_to_earlier(
    client_in, user, django_assert_max_num_queries
):
    """10,000 messages: the page renders only the last HISTORY_PAGE, in order, in a
    constant number of queries, and links to the page before them."""
    from chat.views import HISTORY_PAGE

    conv = Conversation.objects.create(owner=user, title="Long")
    tree.bulk_append(
        conv,
        [
            Message(conversation=conv, role="user", content=f"line {i:05}")
            for i in range(10_000)
        ],
    )
    first = 10_000 - HISTORY_PAGE
    with django_assert_max_num_queries(12):
        response = client_in.get(f"/?c={conv.pk}")
    body = response.content.decode()
    assert "line 09999" in body and f"line {first:05}" in body
    assert f"line {first - 1:05}" not in body
    assert body.index(f"line {first:05}") < body.index("line 09999")
    first_shown = conv.messages.get(content=f"line {first:05}").pk
    assert f"before={first_shown}" in body
    earlier = client_in.get(f"/?c={conv.pk}&before={first_shown}").content.decode()
    assert f"line {first - 1:05}" in earlier and f"line {first:05}" not in earlier
    assert f"line {first - HISTORY_PAGE:05}" in earlier
