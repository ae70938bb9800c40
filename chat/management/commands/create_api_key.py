"""`manage.py create_api_key USERNAME [--name N] [--no-history]`: make an API key and
print it once (--no-history: its /v1 exchanges are not kept).

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
        parser.add_argument(
            "--no-history",
            action="store_true",
            help="forget its /v1 exchanges once answered",
        )

    def handle(self, *args, username: str, name: str, no_history: bool, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"no user named {username!r}")
        if not user.is_active:
            raise CommandError(f"user {username!r} is inactive")
        key, raw = ApiKey.generate(user=user, name=name, keep_history=not no_history)
        self.stderr.write(
            f"API key kc_{key.prefix}… for {username} created; it is shown only this once."
        )
        self.stdout.write(raw)
