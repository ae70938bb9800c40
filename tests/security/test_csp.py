"""Finding 7: no Content-Security-Policy. Every page now says: only our own origin,
no inline script, no plugins, no framing, no <base> (django-csp)."""

import pytest
from django.test import Client

EXPECTED = {
    "default-src": "'self'",
    "object-src": "'none'",
    "frame-ancestors": "'none'",
    "base-uri": "'none'",
}


def directives(header: str) -> dict[str, str]:
    parts = (part.strip().split(" ", 1) for part in header.split(";") if part.strip())
    return {name: value for name, value in parts}


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/", "/accounts/login/", "/admin/login/"])
def test_pages_carry_the_policy(make_user, path):
    client = Client()
    client.force_login(make_user())
    response = client.get(path, follow=True)
    assert response.status_code == 200
    policy = directives(response["Content-Security-Policy"])
    assert EXPECTED.items() <= policy.items()
    assert "unsafe-inline" not in response["Content-Security-Policy"]
