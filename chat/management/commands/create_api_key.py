"""`manage.py create_api_key USERNAME [--name N]`: make a REST API key and print it once.

Only a hash is stored, so the printed key cannot be shown again; revoke it in the admin.
"""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from chat.models import ApiKey


class Command(BaseCommand):
    help = "Create an API key for USERNAME and print it (shown only this once)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument(
            "--name", default="", help="a label to recognise the key by"
        )

    def handle(self, *args, username: str, name: str, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"no user named {username!r}")
        if not user.is_active:
            raise CommandError(f"user {username!r} is inactive")
        key, raw = ApiKey.generate(user=user, name=name)
        self.stderr.write(
            f"API key kc_{key.prefix}… for {username} created; it is shown only this once."
        )
        self.stdout.write(raw)
