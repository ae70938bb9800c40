"""Migration 0005 turns every conversation made at the previous schema into one path,
losslessly: each message follows the one before it, the last one is shown."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("chat", "0004_usage_ledger")]
AFTER = [("chat", "0005_message_tree")]


@pytest.mark.django_db(transaction=True)
def test_existing_conversations_become_single_paths():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    User = old.get_model("auth", "User")
    Conversation = old.get_model("chat", "Conversation")
    Message = old.get_model("chat", "Message")
    owner = User.objects.create(username="old-timer")
    texts = {}
    for name, count in (("long", 7), ("single", 1), ("empty", 0)):
        conversation = Conversation.objects.create(owner=owner, title=name)
        texts[name] = [f"{name} {n}" for n in range(count)]
        for n, text in enumerate(texts[name]):
            Message.objects.create(
                conversation=conversation,
                role="user" if n % 2 == 0 else "assistant",
                content=text,
            )

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(AFTER)
    new = executor.loader.project_state(AFTER).apps
    Conversation = new.get_model("chat", "Conversation")
    Message = new.get_model("chat", "Message")
    for name, expected in texts.items():
        conversation = Conversation.objects.get(title=name)
        rows = list(Message.objects.filter(conversation=conversation).order_by("id"))
        assert [m.content for m in rows] == expected  # nothing lost, nothing added
        assert [m.depth for m in rows] == list(range(len(rows)))
        parents = [None] + [m.pk for m in rows[:-1]]
        assert [m.parent_id for m in rows] == parents[: len(rows)]
        leaf = rows[-1].pk if rows else None
        assert conversation.current_leaf_id == leaf
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())  # back to the latest schema
