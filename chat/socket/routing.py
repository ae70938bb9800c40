from django.urls import path

from chat.socket.consumer import ChatConsumer

websocket_urlpatterns = [
    path("ws/chat/", ChatConsumer.as_asgi()),
    path("api/ws/chat", ChatConsumer.as_asgi()),
    path("api/ws/chat/", ChatConsumer.as_asgi()),
]
