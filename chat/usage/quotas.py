"""What a user may still start: the per-minute rate limit and the daily quotas, both read
from the usage ledger, so that deleting, regenerating or continuing replies gives nothing
back. Days run from midnight to midnight in the site's time zone (TIME_ZONE)."""

from dataclasses import dataclass
from datetime import datetime, time, timedelta

from django.conf import settings
from django.utils import formats, timezone
from django.utils.translation import gettext as _

from chat.errors import ChatError
from chat.usage.models import GroupQuota, UsageEntry, UserQuota

RATE_WINDOW = timedelta(seconds=60)


@dataclass(frozen=True)
class DailyLimits:
    """0 means no limit."""

    replies: int
    tokens: int


def _pick(own: int | None, of_groups: list[int | None], default: int) -> int:
    if own is not None:
        return own
    granted = [value for value in of_groups if value is not None]
    if not granted:
        return default
    return 0 if 0 in granted else max(granted)


def daily_limits(user) -> DailyLimits:
    """The user's own quota, else the most generous of their groups', else the
    settings CHAT_DAILY_REPLY_LIMIT and CHAT_DAILY_TOKEN_LIMIT."""
    own = (
        UserQuota.objects.filter(user=user)
        .values_list("daily_replies", "daily_tokens")
        .first()
    ) or (None, None)
    groups = list(
        GroupQuota.objects.filter(group__user=user).values_list(
            "daily_replies", "daily_tokens"
        )
    )
    return DailyLimits(
        replies=_pick(own[0], [g[0] for g in groups], settings.CHAT_DAILY_REPLY_LIMIT),
        tokens=_pick(own[1], [g[1] for g in groups], settings.CHAT_DAILY_TOKEN_LIMIT),
    )


def day_bounds(now: datetime | None = None) -> tuple[datetime, datetime]:
    """The start of today and of tomorrow, in the site's time zone."""
    today = timezone.localtime(now or timezone.now()).date()
    start = timezone.make_aware(datetime.combine(today, time.min))
    return start, timezone.make_aware(datetime.combine(today + timedelta(1), time.min))


def usage_today(user, limits: DailyLimits | None = None) -> dict:
    """Today's replies and tokens of `user`, their limits and when they reset."""
    now = timezone.now()
    start, reset = day_bounds(now)
    totals = UsageEntry.objects.filter(user=user).since(start).totals()
    limits = limits or daily_limits(user)
    return {
        "day": start.date().isoformat(),
        "replies": totals["replies"],
        "tokens": totals["tokens"],
        "reply_limit": limits.replies,
        "token_limit": limits.tokens,
        "resets_at": reset.isoformat(),
        "retry_after": _seconds_until(reset, now),
    }


def _seconds_until(moment: datetime, now: datetime) -> int:
    return max(1, int((moment - now).total_seconds()) + 1)


def rate_limit_check(user) -> None:
    limit = settings.CHAT_RATE_LIMIT_PER_MINUTE
    if limit <= 0:
        return
    now = timezone.now()
    since = now - RATE_WINDOW
    recent = list(
        UsageEntry.objects.filter(user=user)
        .since(since)
        .order_by("created_at")
        .values_list("created_at", flat=True)[:limit]
    )
    if len(recent) >= limit:
        raise ChatError(
            "rate_limited",
            f"Too many messages: at most {limit} a minute.",
            retry_after=_seconds_until(recent[0] + RATE_WINDOW, now),
        )


def quota_check(user) -> None:
    """Raise ChatError("quota_exceeded") with `retry_after` (seconds to the reset) when
    today's replies or tokens have reached the user's daily limit."""
    limits = daily_limits(user)
    if not limits.replies and not limits.tokens:
        return
    usage = usage_today(user, limits)
    reset = timezone.localtime(day_bounds()[1])
    when = {
        "time": formats.time_format(reset, "H:i"),
        "zone": timezone.get_current_timezone_name(),
    }
    if limits.replies and usage["replies"] >= limits.replies:
        message = _(
            "Daily limit reached: %(limit)s replies a day. "
            "It resets at %(time)s (%(zone)s)."
        ) % {"limit": limits.replies, **when}
    elif limits.tokens and usage["tokens"] >= limits.tokens:
        message = _(
            "Daily limit reached: %(limit)s tokens a day. "
            "It resets at %(time)s (%(zone)s)."
        ) % {"limit": formats.number_format(limits.tokens, force_grouping=True), **when}
    else:
        return
    raise ChatError("quota_exceeded", message, retry_after=usage["retry_after"])


def reply_allowance_check(user) -> None:
    """Everything that limits starting one more reply, whichever way it is started."""
    rate_limit_check(user)
    quota_check(user)
