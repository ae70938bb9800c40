"""Fills a bench database (run in its own process, DATABASE_URL from the environment):
users with API keys and empty conversations, and one user with a 10,000-message history."""

import argparse
import json
import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "koboldchat.settings")
django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import (  # noqa: E402
    BACKEND_SESSION_KEY,
    HASH_SESSION_KEY,
    SESSION_KEY,
    get_user_model,
)
from django.contrib.sessions.backends.db import SessionStore  # noqa: E402
from django.db import connection, transaction  # noqa: E402

from chat import tree  # noqa: E402
from chat.models import ApiKey, Conversation, Message  # noqa: E402
from chat.rendering import render_markdown  # noqa: E402

BRANCHES = 1_000  # alternative replies in the long history
MAX_TOKENS = 20_000  # the profiles' limits would cut the long replies


def users_with_keys(count: int, conversations: int, solo: int) -> list[dict]:
    """`count` users, each with an API key and `conversations` empty conversations (the
    first user `solo` of them: the one-at-a-time runs take a fresh one per reply)."""
    User = get_user_model()
    found = []
    # No password: hashing 500 of them would take longer than the benchmark.
    users = User.objects.bulk_create(User(username=f"bench{n}") for n in range(count))
    for user in users:
        _, raw = ApiKey.generate(user=user, name="bench")
        convs = Conversation.objects.bulk_create(
            Conversation(owner=user, title=f"bench {n}", max_tokens=MAX_TOKENS)
            for n in range(solo if user is users[0] else conversations)
        )
        found.append({"key": raw, "conversations": [c.pk for c in convs]})
    return found


REPLY = """Answer {n}: here is **some markdown** with `inline code` and a [link](https://example.org).

1. a first point, explained in a sentence or two so that the line wraps;
2. a second point;
3. a third one.

```python
def answer():
    return {n}
```

> A closing remark, quoted, with *emphasis*."""


def history(messages: int) -> dict:
    """A user whose conversation holds `messages` messages, logged in (session cookie)."""
    user = get_user_model().objects.create(username="historian")
    _, raw = ApiKey.generate(user=user, name="bench")
    conversation = Conversation.objects.create(owner=user, title="long history")
    rows = []
    for n in range(messages):
        if n % 2 == 0:
            rows.append(
                Message(
                    conversation=conversation, role="user", content=f"Question {n}?"
                )
            )
            continue
        # A settled reply of a few paragraphs, stored as the app stores it (with its html).
        content = REPLY.format(n=n)
        rows.append(
            Message(
                conversation=conversation,
                role=Message.Role.ASSISTANT,
                content=content,
                html=render_markdown(content),
                status=Message.Status.COMPLETE,
            )
        )
    path = tree.bulk_append(conversation, rows)
    branches = _alternatives(conversation, path, BRANCHES)
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[-1]  # axes first
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return {
        "conversation": conversation.pk,
        "messages": messages,
        "branches": branches,
        "session": session.session_key,
        "key": raw,
    }


def _alternatives(conversation, path: list[Message], count: int) -> int:
    """`count` other replies, spread along the path (each a sibling of a reply shown,
    as Regenerate leaves them): the branch shown stays the path."""
    replies = [m for m in path if m.role == Message.Role.ASSISTANT]
    step = max(1, len(replies) // count)
    others = [
        Message(
            conversation=conversation,
            role=Message.Role.ASSISTANT,
            content=f"Another answer to message {reply.parent_id}.",
            html=render_markdown(f"Another answer to message {reply.parent_id}."),
            status=Message.Status.COMPLETE,
            parent_id=reply.parent_id,
            depth=reply.depth,
        )
        for reply in replies[::step][:count]
    ]
    Message.objects.bulk_create(others, batch_size=1000)
    return len(others)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=1)
    parser.add_argument("--conversations", type=int, default=1)
    parser.add_argument("--solo", type=int, default=1)
    parser.add_argument("--history", type=int, default=10_000)
    args = parser.parse_args()
    with transaction.atomic():
        seeded = {
            "users": users_with_keys(args.users, args.conversations, args.solo),
            "history": history(args.history),
        }
    # PostgreSQL's planner statistics, as a live database has them (autovacuum analyzes a
    # table soon after it grows): without them it sorts all 10,000 rows to show 50.
    # SQLite never gathers statistics on its own (nor does Django), so it is left as is.
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    print(json.dumps(seeded))


if __name__ == "__main__":
    main()
