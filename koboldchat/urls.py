from functools import wraps

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import urls as auth_urls
from django.http import Http404
from django.urls import include, path

from chat.api.app import api
from chat.gateway.app import endpoint_missing, gateway


def mail_configured(view):
    """A password reset mails a link: without EMAIL_HOST its pages do not exist."""

    @wraps(view)
    def guarded(request, *args, **kwargs):
        if not settings.EMAIL_HOST:
            raise Http404("Password reset is off: no mail server is configured.")
        return view(request, *args, **kwargs)

    return guarded


account_urls = [
    path(str(p.pattern), mail_configured(p.callback), name=p.name)
    if p.name.startswith("password_reset")
    else p
    for p in auth_urls.urlpatterns
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include(account_urls)),
    path("i18n/", include("django.conf.urls.i18n")),
    path("api/", api.urls),
    path("v1/", gateway.urls),
    path("v1/<path:rest>", endpoint_missing),
    path("", include("chat.urls")),
]
