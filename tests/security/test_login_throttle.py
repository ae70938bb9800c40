"""Finding 3: logins were not throttled. After AXES_FAILURE_LIMIT failures a username and
address pair is locked out for the cool-off (django-axes), on the site's login page and
the admin's alike; staff unlock it in the admin."""

import pytest
from axes.models import AccessAttempt
from django.test import Client

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"


@pytest.fixture
def three_tries(settings):
    settings.AXES_FAILURE_LIMIT = 3
    # Each failed login hashes a password: a fast hasher keeps the test short.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return settings


def log_in(path, username, password, address="10.0.0.1"):
    return Client(REMOTE_ADDR=address).post(
        path, {"username": username, "password": password, "next": "/"}
    )


def fail(path, username, times, address="10.0.0.1"):
    for _ in range(times):
        log_in(path, username, "wrong", address)


def test_the_limit_locks_the_pair_out_with_a_clear_message(three_tries, make_user):
    """Past the limit even the right password is refused: 429, the login form again,
    saying why and for how long."""
    user = make_user()
    fail(LOGIN, user.username, 3)
    response = log_in(LOGIN, user.username, f"pw-{user.username}")
    assert response.status_code == 429
    page = response.content.decode()
    assert "Too many failed logins" in page and "15 minutes" in page
    assert 'name="password"' in page
    assert "_auth_user_id" not in response.client.session


def test_below_the_limit_the_right_password_works(three_tries, make_user):
    user = make_user()
    fail(LOGIN, user.username, 2)
    assert log_in(LOGIN, user.username, f"pw-{user.username}").status_code == 302


def test_another_address_is_not_locked_out(three_tries, make_user):
    """The lockout is per username and address: the owner elsewhere still logs in."""
    user = make_user()
    fail(LOGIN, user.username, 3, address="10.0.0.66")
    response = log_in(LOGIN, user.username, f"pw-{user.username}", "10.0.0.2")
    assert response.status_code == 302


def test_the_admin_login_is_throttled_the_same(three_tries, make_user):
    staff = make_user(is_staff=True, is_superuser=True)
    fail("/admin/login/", staff.username, 3)
    response = log_in("/admin/login/", staff.username, f"pw-{staff.username}")
    assert response.status_code == 429
    assert "Too many failed logins" in response.content.decode()


def test_staff_unlock_in_the_admin(three_tries, make_user):
    """Axes' own admin lists the attempt; deleting it lifts the lockout."""
    user = make_user()
    fail(LOGIN, user.username, 3)
    staff = Client()
    staff.force_login(make_user(is_staff=True, is_superuser=True))
    listing = staff.get("/admin/axes/accessattempt/")
    assert listing.status_code == 200 and user.username in listing.content.decode()
    attempt = AccessAttempt.objects.get(username=user.username)
    staff.post(
        "/admin/axes/accessattempt/",
        {"action": "delete_selected", "_selected_action": [attempt.pk], "post": "yes"},
    )
    assert not AccessAttempt.objects.exists()
    assert log_in(LOGIN, user.username, f"pw-{user.username}").status_code == 302


def test_the_lockout_message_is_translated(three_tries, make_user):
    user = make_user()
    fail(LOGIN, user.username, 3)
    response = Client(REMOTE_ADDR="10.0.0.1", headers={"accept-language": "fr"}).post(
        LOGIN, {"username": user.username, "password": "wrong"}
    )
    assert response.status_code == 429
    assert "Trop de connexions" in response.content.decode()
