"""The backends in the admin: each KoboldCpp server, whether it answers, its model and
slots; the password can be set or cleared, never read back (a write-only field)."""

from django import forms
from django.contrib import admin

from chat.models import Backend
from chat.pool.registry import backends_check, backends_seed, in_use


class BackendForm(forms.ModelForm):
    """The password field starts empty and is kept when left empty."""

    password = forms.CharField(
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="KoboldCpp's --password. Left empty: unchanged (new: "
        "KOBOLDCPP_PASSWORD is used).",
    )
    clear_password = forms.BooleanField(
        required=False, help_text="Forget the stored password."
    )

    class Meta:
        model = Backend
        fields = ("name", "url", "api", "password", "slots", "enabled")

    def clean_password(self) -> str:
        given = self.cleaned_data.get("password", "")
        if self.data.get("clear_password"):
            return ""
        return given or (self.instance.password if self.instance.pk else "")


@admin.register(Backend)
class BackendAdmin(admin.ModelAdmin):
    form = BackendForm
    list_display = (
        "name",
        "url",
        "api",
        "enabled",
        "used",
        "reachable",
        "model",
        "slots",
        "has_password",
        "checked_at",
    )
    list_filter = ("enabled", "api")
    search_fields = ("name", "url", "model")
    readonly_fields = ("model", "reachable", "checked_at", "seeded")

    def get_fields(self, request, obj=None):
        fields = ["name", "url", "api", "password", "clear_password", "slots"]
        return [*fields, "enabled", *self.readonly_fields]

    def changelist_view(self, request, extra_context=None):
        """The list says how each enabled backend is doing now: each is asked once."""
        enabled = backends_seed()
        backends_check(enabled)
        return super().changelist_view(request, extra_context)

    @admin.display(description="in use", boolean=True)
    def used(self, backend: Backend) -> bool:
        """Enabled, and (seeded ones) still named by KOBOLDCPP_URL(S)."""
        return in_use(backend)

    @admin.display(description="password", boolean=True)
    def has_password(self, backend: Backend) -> bool:
        return bool(backend.password)
