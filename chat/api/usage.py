"""GET /api/usage: what the caller has used today (replies, tokens), against their daily
limits, with the sentence the page shows."""

from django.http import HttpRequest
from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from ninja import Router

from chat.api.auth import KEY_OR_SESSION
from chat.api.conversations import ERRORS
from chat.api.schemas import UsageOut
from chat.usage.quotas import usage_today

router = Router(tags=["usage"], auth=KEY_OR_SESSION)


def _number(value: int) -> str:
    return number_format(value, force_grouping=True)


def usage_summary(usage: dict) -> str:
    """E.g. "today: 12 replies, 8,400 of 50,000 tokens"."""
    count, limit = usage["replies"], usage["reply_limit"]
    replies = (
        _("%(count)s of %(limit)s replies")
        if limit
        else ngettext("%(count)s reply", "%(count)s replies", count)
    ) % {"count": _number(count), "limit": _number(limit)}
    count, limit = usage["tokens"], usage["token_limit"]
    tokens = (
        _("%(count)s of %(limit)s tokens")
        if limit
        else ngettext("%(count)s token", "%(count)s tokens", count)
    ) % {"count": _number(count), "limit": _number(limit)}
    return _("today: %(replies)s, %(tokens)s") % {"replies": replies, "tokens": tokens}


@router.get("", response={200: UsageOut, **ERRORS})
def usage(request: HttpRequest):
    """Today's replies and tokens, your daily limits (0: none) and when they reset."""
    today = usage_today(request.auth)
    return today | {"summary": usage_summary(today)}
