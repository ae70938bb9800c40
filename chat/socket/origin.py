"""Whether a socket's Origin is the site itself: scheme, host and port must equal those of
the request (its Host header and scheme, as Django's CSRF check sees them), or one of
DJANGO_CSRF_TRUSTED_ORIGINS. Matching the host name alone would let http://our.host:8080
or ALLOWED_HOSTS=* speak for the site."""

from urllib.parse import urlsplit

from django.conf import settings
from django.http.request import split_domain_port, validate_host

DEFAULT_PORTS = {"http": 80, "https": 443}


def normalized(origin: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an origin, default port filled in; None if malformed."""
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), (parts.hostname or "")
    if scheme not in DEFAULT_PORTS or not host:
        return None
    return scheme, host, port or DEFAULT_PORTS[scheme]


def _headers(scope) -> dict[bytes, bytes]:
    return dict(scope.get("headers", []))


def _is_secure(scope, headers: dict[bytes, bytes]) -> bool:
    proxy_header = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    if proxy_header:
        name, value = proxy_header
        header = name.removeprefix("HTTP_").lower().replace("_", "-").encode()
        if header in headers:
            return headers[header].decode("latin1").split(",")[0].strip() == value
    return scope.get("scheme") in ("wss", "https")


def site_origin(scope) -> str | None:
    """The site's own origin for this handshake, from its Host header (or the server
    address) and scheme; None when the host is not one of ALLOWED_HOSTS."""
    headers = _headers(scope)
    host = headers.get(b"host", b"").decode("latin1")
    if not host and scope.get("server"):
        server_host, server_port = scope["server"]
        host = f"{server_host}:{server_port}"
    domain, _ = split_domain_port(host)
    if not domain or not validate_host(domain, settings.ALLOWED_HOSTS):
        return None
    scheme = "https" if _is_secure(scope, headers) else "http"
    return f"{scheme}://{host}"


def _trusted(origin: tuple[str, str, int]) -> bool:
    """One of CSRF_TRUSTED_ORIGINS, with Django's meaning of `https://*.example.com`
    (example.com and its subdomains)."""
    scheme, host, port = origin
    for entry in settings.CSRF_TRUSTED_ORIGINS:
        wildcard = "://*." in entry
        trusted = normalized(entry.replace("://*.", "://", 1))
        if trusted is None or (trusted[0], trusted[2]) != (scheme, port):
            continue
        if host == trusted[1] or (wildcard and host.endswith("." + trusted[1])):
            return True
    return False


def origin_allowed(origin: bytes, scope) -> bool:
    asked = normalized(origin.decode("latin1"))
    if asked is None:
        return False
    own = site_origin(scope)
    return (own is not None and normalized(own) == asked) or _trusted(asked)
