"""KOBOLDCHAT_LOCAL_USER: a script on this machine acts as that user on the REST API and
the socket without credentials. Only what comes straight from a loopback address, with no
credentials, no proxy header and no sign of a browser (a web page elsewhere must not act
as the local user: browsers send Origin or Sec-Fetch-* with what they fetch)."""

from collections.abc import Mapping

from django.conf import settings
from django.contrib.auth import get_user_model

LOOPBACK = frozenset({"127.0.0.1", "::1"})
NOT_A_LOCAL_SCRIPT = frozenset(
    {
        "authorization",
        "cookie",
        "origin",
        "sec-fetch-site",
        "sec-fetch-mode",
        "forwarded",
        "x-forwarded-for",
        "x-real-ip",
    }
)


def local_user_for(address: str | None, headers: Mapping[str, str]):
    """The local user, when KOBOLDCHAT_LOCAL_USER is set and this request (its client
    `address` and its headers) is a script on this machine; else None."""
    username = settings.KOBOLDCHAT_LOCAL_USER
    if not username or address not in LOOPBACK:
        return None
    present = {name.lower() for name, value in headers.items() if value}
    if NOT_A_LOCAL_SCRIPT & present:
        return None
    return get_user_model().objects.filter(username=username, is_active=True).first()
