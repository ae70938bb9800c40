"""The heuristic classifier: fast-path cases, slash commands, languages, weak guesses."""

import pytest

from agents.intents import classify, detect_language, slash_command


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("coucou", "fr"),
        ("Bonjour !", "fr"),
        ("merci beaucoup", "fr"),
        ("au revoir", "fr"),
        ("hello", "en"),
        ("thanks!", "en"),
        ("Goodbye.", "en"),
        ("Hi!!", "en"),
    ],
)
def test_greetings_thanks_goodbyes_are_unambiguous_smalltalk(text, language):
    """Greetings, thanks and goodbyes in English and French take the fast path."""
    result = classify(text)
    assert (result.intent, result.unambiguous, result.language) == (
        "smalltalk",
        True,
        language,
    )


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
    """A slash command sets the intent with full confidence."""
    result = classify(text)
    assert (result.intent, result.confidence, result.unambiguous) == (intent, 1.0, True)


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


def test_detect_language_spots_french():
    """Accents or common French words mean French."""
    assert detect_language("Quelle est la capitale du Pérou ?") == "fr"
    assert detect_language("What is the capital of Peru?") == "en"
