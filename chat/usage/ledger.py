"""Write paths of the usage ledger: a row when a reply starts (in the transaction that
creates or reopens the reply row), its token counts when the reply's final write has them."""

from chat.usage.models import UsageEntry


def usage_record_start(*, user, kind: str, message_id: int) -> UsageEntry:
    return UsageEntry.objects.create(user=user, kind=kind, message_id=message_id)


def usage_record_tokens(
    *, message_id: int, prompt_tokens: int | None, completion_tokens: int | None
) -> None:
    """Give the latest reply started on `message_id` (a continued reply has several
    entries) the token counts of its generation."""
    latest = (
        UsageEntry.objects.filter(message_id=message_id)
        .order_by("-id")
        .values_list("pk", flat=True)
        .first()
    )
    if latest is not None:
        UsageEntry.objects.filter(pk=latest).update(
            prompt_tokens=prompt_tokens, completion_tokens=completion_tokens
        )
