"""A conversation is a tree of messages (`Message.parent`); the path from its root to
`Conversation.current_leaf` is the conversation as the page and the model see it. Paths
and subtrees are read with recursive SQL over the primary key and parent indexes, never
row by row from Python; SQLite and PostgreSQL both run these queries."""

from django.db import connection

from chat.models import Conversation, Message

_TABLE = Message._meta.db_table

# From a message up to the root, at most %s rows (its ancestors nearest first).
_PATH_UP = f"""
WITH RECURSIVE up(id, parent_id, depth, steps) AS (
    SELECT id, parent_id, depth, 1 FROM {_TABLE} WHERE id = %s
    UNION ALL
    SELECT m.id, m.parent_id, m.depth, up.steps + 1
    FROM {_TABLE} m JOIN up ON m.id = up.parent_id
    WHERE up.steps < %s
)
SELECT id FROM up ORDER BY depth
"""  # noqa: S608  (the table name is ours; values are parameters)

# The newest message of a subtree: the leaf its branch shows when chosen.
_NEWEST_BELOW = f"""
WITH RECURSIVE down(id) AS (
    SELECT id FROM {_TABLE} WHERE id = %s
    UNION ALL
    SELECT m.id FROM {_TABLE} m JOIN down ON m.parent_id = down.id
)
SELECT MAX(id) FROM down
"""  # noqa: S608

UNLIMITED = 2**31 - 1


def path_ids(leaf_id: int | None, *, limit: int = UNLIMITED) -> list[int]:
    """The ids from the root to `leaf_id`, root first; with `limit`, only the last ones."""
    if leaf_id is None or limit <= 0:
        return []
    with connection.cursor() as cursor:
        cursor.execute(_PATH_UP, [leaf_id, limit])
        return [row[0] for row in cursor.fetchall()]


def path_messages(leaf_id: int | None, *, limit: int = UNLIMITED) -> list[Message]:
    """The messages of the path ending at `leaf_id`, root first (see path_ids)."""
    ids = path_ids(leaf_id, limit=limit)
    return list(Message.objects.filter(pk__in=ids).order_by("depth")) if ids else []


def newest_descendant(message_id: int) -> int:
    with connection.cursor() as cursor:
        cursor.execute(_NEWEST_BELOW, [message_id])
        return cursor.fetchone()[0]


def leaf_id(conversation: Conversation) -> int | None:
    """The end of the branch shown; for a conversation that never had one set (rows
    written by older code), its newest message."""
    if conversation.current_leaf_id is not None:
        return conversation.current_leaf_id
    return (
        Message.objects.filter(conversation=conversation)
        .order_by("-id")
        .values_list("pk", flat=True)
        .first()
    )


def child_fields(parent: Message | None) -> dict:
    """The tree fields of a new message under `parent` (None: a first message)."""
    if parent is None:
        return {"parent": None, "depth": 0}
    return {"parent": parent, "depth": parent.depth + 1}


def siblings_of(messages: list[Message]) -> dict[int, list[int]]:
    """For each message, the ids of its siblings (itself included), oldest first: the
    alternatives of a reply, or the edits of a user message."""
    if not messages:
        return {}
    parents = {m.parent_id for m in messages if m.parent_id is not None}
    rows = Message.objects.filter(parent_id__in=parents)
    if any(m.parent_id is None for m in messages):
        roots = Message.objects.filter(
            conversation_id=messages[0].conversation_id, parent__isnull=True
        )
        rows = rows | roots
    groups: dict[int | None, list[int]] = {}
    for parent_id, pk in rows.order_by("created_at", "id").values_list(
        "parent_id", "pk"
    ):
        groups.setdefault(parent_id, []).append(pk)
    return {m.pk: groups.get(m.parent_id, [m.pk]) for m in messages}


def branch_info(message: Message, siblings: dict[int, list[int]]) -> dict:
    """The tree fields of a message's payload."""
    ids = siblings.get(message.pk, [message.pk])
    return {
        "parent_id": message.parent_id,
        "sibling_ids": ids,
        "sibling_index": ids.index(message.pk) if message.pk in ids else 0,
    }


def bulk_append(conversation: Conversation, messages: list[Message], batch_size=1000):
    """Store `messages` (unsaved, in order) in a few queries as a path following the
    branch shown, and show its end: an import, or a benchmark's or a test's history."""
    parent = Message.objects.filter(pk=leaf_id(conversation)).first()
    rows = Message.objects.bulk_create(list(messages), batch_size=batch_size)
    for row in rows:
        row.parent, row.depth = parent, parent.depth + 1 if parent else 0
        parent = row
    Message.objects.bulk_update(rows, ["parent", "depth"], batch_size=batch_size)
    if rows:
        conversation.current_leaf = rows[-1]
        conversation.save(update_fields=["current_leaf"])
    return rows
