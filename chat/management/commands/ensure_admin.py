"""`manage.py ensure_admin`: make sure a superuser exists, so a fresh install can log in.

Uses DJANGO_SUPERUSER_USERNAME/DJANGO_SUPERUSER_PASSWORD when set; otherwise creates
"admin" with a generated password, printed once (only its hash is stored).
"""

import os
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


def admin_ensure(*, username: str = "", password: str = "") -> tuple[str, str | None]:
    """Create a superuser if there is none.

    Returns (username, generated password or None); the username is "" when a superuser
    already existed and nothing was done.
    """
    User = get_user_model()
    if User.objects.filter(is_superuser=True).exists():
        return "", None
    username = username or "admin"
    generated = None if password else secrets.token_urlsafe(12)
    user = User.objects.filter(username=username).first() or User(username=username)
    user.is_staff = user.is_superuser = user.is_active = True
    user.set_password(password or generated)
    user.save()
    return username, generated


class Command(BaseCommand):
    help = "Create an admin account if there is no superuser yet."

    def handle(self, *args, **options):
        username, generated = admin_ensure(
            username=os.environ.get("DJANGO_SUPERUSER_USERNAME", ""),
            password=os.environ.get("DJANGO_SUPERUSER_PASSWORD", ""),
        )
        if not username:
            return
        if generated:
            self.stdout.write(
                f"Created the admin account {username!r} with password {generated!r}\n"
                "(shown only this once; change it in the admin, or set "
                "DJANGO_SUPERUSER_USERNAME/DJANGO_SUPERUSER_PASSWORD before the first run)"
            )
        else:
            self.stdout.write(
                f"Created the admin account {username!r} "
                "(password from DJANGO_SUPERUSER_PASSWORD)"
            )
