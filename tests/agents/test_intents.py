"""The heuristic classifier: fast-path cases, slash commands, languages, weak guesses."""

import pytest

from agents.intents import classify, slash_command


@pytest.mark.parametrize(
    "text",
    [
        "coucou",
        "Bonjour !",
        "merci beaucoup",
        "au revoir",
        "hello",
        "thanks!",
        "Goodbye.",
        "Hi!!",
    ],
)
def test_greetings_thanks_goodbyes_are_unambiguous_smalltalk(text):
    """Greetings, thanks and goodbyes in English and French take the fast path."""
    result = classify(text)
    assert (result.intent, result.unambiguous) == ("smalltalk", True)


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("/code fizzbuzz in rust", "code"),
        ("/summarize", "summarize"),
        ("/creative a haiku", "creative"),
        ("/chat hi", "chat"),
    ],
)
def test_slash_commands_decide_the_intent(text, intent):
    """A slash command sets the intent, no model asked."""
    result = classify(text)
    assert (result.intent, result.unambiguous) == (intent, True)


def test_slash_command_returns_the_rest_of_the_message():
    """The text after the command is what the model gets."""
    assert slash_command("/code  write fizzbuzz ") == ("code", "write fizzbuzz")
    assert slash_command("/unknown x") is None


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("def add(a, b):\n    return a + b\nwhy does this fail?", "code"),
        ("```js\nconsole.log(1)\n```", "code"),
        ("Write a poem about the sea", "creative"),
        ("écris-moi une histoire de pirates", "creative"),
        ("Can you summarize what we said?", "summarize"),
        ("résume la conversation", "summarize"),
        ("What is the capital of Peru?", "chat"),
    ],
)
def test_other_messages_get_a_guess_that_is_not_a_fast_path(text, intent):
    """Code, creative, summary and plain questions are guessed but left to the model."""
    result = classify(text)
    assert (result.intent, result.unambiguous) == (intent, False)


def test_a_greeting_inside_a_longer_question_is_not_smalltalk():
    """Only a message that is just a greeting is smalltalk."""
    assert classify("hello, how do I reverse a list in Python?").intent != "smalltalk"
