"""The chat page's URLs (the REST API is mounted at /api/ by koboldchat/urls.py)."""

from django.urls import path

from chat import views

app_name = "chat"
urlpatterns = [
    path("", views.index, name="index"),
]
