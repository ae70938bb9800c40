"""Open sockets end with their credentials: revoking an API key, logging out, changing
the password, or deactivating or deleting the user closes the sockets those credentials
opened, in every process, with close code 4401.

Each socket joins channel-layer groups named after what authenticated it (`socket_groups`);
`close_sockets` sends `socket.revoke` to groups once the change is committed (called by
services.api_keys_revoke and by the signal receivers below), and the consumer closes. A socket checks its credentials again right after
joining, so a revocation that happened during its handshake closes it as well."""

import hashlib
import logging
from importlib import import_module

from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib.auth import HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.auth.signals import user_logged_out
from django.db import transaction
from django.db.models.signals import post_delete, post_save, pre_save
from django.dispatch import receiver
from django.utils.crypto import constant_time_compare

from chat.models import ApiKey

log = logging.getLogger(__name__)

CLOSE_CODE = 4401
REVOKE_EVENT = {"type": "socket.revoke"}


def user_group(user_id: int) -> str:
    """Every socket of the user (deactivated or deleted: all close)."""
    return f"sockets-user-{user_id}"


def user_sessions_group(user_id: int) -> str:
    """The user's browser sockets (a password change ends every session)."""
    return f"sockets-user-{user_id}-sessions"


def key_group(key_id: int) -> str:
    return f"sockets-key-{key_id}"


def session_group(session_key: str) -> str:
    # A digest: the session key itself is a credential, and group names reach Redis.
    return f"sockets-session-{hashlib.sha256(session_key.encode()).hexdigest()[:32]}"


def socket_groups(scope) -> list[str]:
    """The groups a socket joins, from what authenticated it (chat.socket.auth)."""
    user_id = scope["user"].pk
    if scope.get("api_key_id") is not None:
        return [user_group(user_id), key_group(scope["api_key_id"])]
    if scope.get("auth") == "local_user":  # KOBOLDCHAT_LOCAL_USER: no session
        return [user_group(user_id)]
    groups = [user_group(user_id), user_sessions_group(user_id)]
    session_key = scope["session"].session_key
    if session_key:
        groups.append(session_group(session_key))
    return groups


def _credentials_valid(scope) -> bool:
    user = scope["user"]
    if scope.get("api_key_id") is not None:
        return (
            ApiKey.objects.active()
            .filter(pk=scope["api_key_id"], user__is_active=True)
            .exists()
        )
    if scope.get("auth") == "local_user":
        return get_user_model().objects.filter(pk=user.pk, is_active=True).exists()
    session_key = scope["session"].session_key
    if not session_key:
        return False
    # A fresh read: the scope's session was loaded before the handshake finished.
    session = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    fresh = get_user_model().objects.filter(pk=user.pk, is_active=True).first()
    return (
        fresh is not None
        and session.get(SESSION_KEY) == str(user.pk)
        and constant_time_compare(
            session.get(HASH_SESSION_KEY, ""), fresh.get_session_auth_hash()
        )
    )


credentials_valid = database_sync_to_async(_credentials_valid)


def close_sockets(*groups: str) -> None:
    """Once the current transaction commits, close every socket in `groups`."""

    def send():
        layer = get_channel_layer()
        for group in groups:
            try:
                async_to_sync(layer.group_send)(group, dict(REVOKE_EVENT))
            except (
                Exception
            ):  # the change stands; its sockets close at their next check
                log.exception("could not tell the sockets of %s to close", group)

    transaction.on_commit(send)


# --- what ends credentials (revoking a key: services.api_keys_revoke) -------------------
@receiver(user_logged_out)
def _logged_out(sender, request, user, **kwargs):
    session = getattr(request, "session", None)
    if session is not None and session.session_key:
        close_sockets(session_group(session.session_key))


@receiver(pre_save, sender=settings.AUTH_USER_MODEL)
def _remember_credentials(sender, instance, update_fields=None, **kwargs):
    watched = {"password", "is_active"}
    if instance.pk is None or (update_fields and not watched & set(update_fields)):
        return  # a new user, or a save of other fields (last_login at each login)
    instance._credentials_before = (
        sender.objects.filter(pk=instance.pk)
        .values_list("password", "is_active")
        .first()
    )


@receiver(post_save, sender=settings.AUTH_USER_MODEL)
def _credentials_saved(sender, instance, **kwargs):
    before = getattr(instance, "_credentials_before", None)
    instance._credentials_before = None
    if before is None:
        return
    password, was_active = before
    if was_active and not instance.is_active:
        close_sockets(user_group(instance.pk))
    elif password != instance.password:
        close_sockets(user_sessions_group(instance.pk))


@receiver(post_delete, sender=settings.AUTH_USER_MODEL)
def _user_deleted(sender, instance, **kwargs):
    close_sockets(user_group(instance.pk))
