from django.apps import AppConfig


class ChatConfig(AppConfig):
    name = "chat"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # `*.mo` is not committed: a start without `make setup` compiles them.
        from chat.management.commands.compile_translations import (
            compile_stale_catalogs,
        )
        from chat.pool import admin as pool_admin  # noqa: F401

        # The receivers that close sockets when their credentials end, and the quota
        # and usage pages (they extend chat.admin, loaded by the admin before this).
        from chat.socket import revocation  # noqa: F401
        from chat.usage import admin  # noqa: F401

        compile_stale_catalogs()
