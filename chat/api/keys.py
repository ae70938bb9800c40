"""REST endpoints for a user's API keys: list, create (the raw key is answered once),
revoke. Browser session only: a key cannot be used to make more keys."""

from django.http import HttpRequest
from ninja import Path, Router, Status

from chat import services
from chat.api.auth import session_auth
from chat.api.conversations import ERRORS, MAX_ID
from chat.api.schemas import ApiKeyCreatedOut, ApiKeyCreateIn, ApiKeyOut
from chat.errors import ChatError
from chat.models import ApiKey

router = Router(tags=["API keys"], auth=session_auth)


@router.get("", response={200: list[ApiKeyOut], **ERRORS})
def key_list(request: HttpRequest):
    """Your keys, newest first, revoked ones included (the key itself is never shown)."""
    return ApiKey.objects.filter(user=request.auth)


@router.post("", response={201: ApiKeyCreatedOut, **ERRORS})
def key_create(request: HttpRequest, body: ApiKeyCreateIn):
    """Make a key; the answer's `key` is the only time it can be read."""
    key, raw = ApiKey.generate(
        user=request.auth, name=body.name.strip(), keep_history=body.keep_history
    )
    return Status(201, ApiKeyOut.from_orm(key).model_dump() | {"key": raw})


@router.delete("/{key_id}", response={204: None, **ERRORS})
def key_revoke(request: HttpRequest, key_id: int = Path(..., ge=1, le=MAX_ID)):
    """Revoke a key: scripts using it are refused from now on, and its open sockets
    close."""
    keys = ApiKey.objects.filter(pk=key_id, user=request.auth)
    if not keys.exists():
        raise ChatError("forbidden", "No such API key.")
    services.api_keys_revoke(keys=keys)
    return Status(204, None)
