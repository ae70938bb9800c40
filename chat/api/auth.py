"""Who is calling the REST API: an `Authorization: Bearer <api key>` header, the
browser's session (with Django's CSRF check on unsafe methods), or, when
KOBOLDCHAT_LOCAL_USER is set, a script on this machine (chat.local_user)."""

from django.http import HttpRequest
from ninja.security import HttpBearer, SessionAuth

from chat.local_user import local_user_for
from chat.models import ApiKey


class ApiKeyAuth(HttpBearer):
    """A key made by ApiKey.generate; revoked keys and inactive users are refused."""

    def authenticate(self, request: HttpRequest, token: str):
        return ApiKey.user_for(token)


class SessionAuthCsrf(SessionAuth):
    """The logged-in browser. CSRF is only checked once a session user is found, so that
    an anonymous caller is told 401 (log in) rather than 403 (CSRF)."""

    def __call__(self, request: HttpRequest):
        if not request.user.is_authenticated:
            return None
        return super().__call__(request)


def local_user_auth(request: HttpRequest):
    """KOBOLDCHAT_LOCAL_USER: a script on this machine, without credentials."""
    return local_user_for(request.META.get("REMOTE_ADDR"), request.headers)


api_key_auth = ApiKeyAuth()
session_auth = SessionAuthCsrf()
KEY_OR_SESSION = [api_key_auth, session_auth, local_user_auth]
