"""ASGI entry point: Django for HTTP, Channels for the chat WebSocket."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "koboldchat.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from chat.socket.auth import ChatSocketAuth  # noqa: E402
from chat.socket.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": ChatSocketAuth(URLRouter(websocket_urlpatterns)),
    }
)

from koboldchat import lifecycle  # noqa: E402

lifecycle.install()
