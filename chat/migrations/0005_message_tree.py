"""Conversations become trees of messages: every existing conversation turns into a
single path (each message's parent is the one before it), ending at its last message."""

import django.db.models.deletion
from django.db import migrations, models

BATCH = 2000


def link_paths(apps, schema_editor):
    Conversation = apps.get_model("chat", "Conversation")
    Message = apps.get_model("chat", "Message")
    for conversation_id in Conversation.objects.values_list("pk", flat=True).iterator():
        rows = list(
            Message.objects.filter(conversation_id=conversation_id)
            .order_by("created_at", "id")
            .only("pk")
        )
        for depth, message in enumerate(rows):
            message.parent_id = rows[depth - 1].pk if depth else None
            message.depth = depth
        Message.objects.bulk_update(rows, ["parent", "depth"], batch_size=BATCH)
        if rows:
            Conversation.objects.filter(pk=conversation_id).update(
                current_leaf_id=rows[-1].pk
            )


class Migration(migrations.Migration):
    dependencies = [
        ("chat", "0004_usage_ledger"),
    ]

    operations = [
        migrations.AddField(
            model_name="conversation",
            name="current_leaf",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="chat.message",
            ),
        ),
        migrations.AddField(
            model_name="message",
            name="depth",
            field=models.PositiveIntegerField(default=0, help_text="0 for the first message."),
        ),
        migrations.AddField(
            model_name="message",
            name="parent",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="children",
                to="chat.message",
            ),
        ),
        migrations.RunPython(link_paths, migrations.RunPython.noop),
    ]
