"""The admin of quotas and usage: a daily quota inline on each user and group, the
ledger read-only, and the ledger summed per user and day."""

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group
from django.db.models import Count, Sum
from django.db.models.functions import Coalesce, TruncDate

from chat.admin import ReadOnlyMixin
from chat.usage.models import DailyUsage, GroupQuota, UsageEntry, UserQuota

DAILY_ROWS = 500


class UserQuotaInline(admin.StackedInline):
    model = UserQuota
    can_delete = False
    extra = 1  # the one form shown; left empty, nothing is saved
    max_num = 1
    verbose_name_plural = "daily quota (empty: the group's or the site's default)"


class GroupQuotaInline(admin.StackedInline):
    model = GroupQuota
    can_delete = False
    extra = 1  # the one form shown; left empty, nothing is saved
    max_num = 1
    verbose_name_plural = "daily quota of the members (empty: the site's default)"


User = get_user_model()
admin.site.unregister(User)
admin.site.unregister(Group)


@admin.register(User)
class QuotaUserAdmin(UserAdmin):
    inlines = (*UserAdmin.inlines, UserQuotaInline)


@admin.register(Group)
class QuotaGroupAdmin(GroupAdmin):
    inlines = (*GroupAdmin.inlines, GroupQuotaInline)


@admin.register(UsageEntry)
class UsageEntryAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = (
        "created_at",
        "user",
        "kind",
        "message_id",
        "prompt_tokens",
        "completion_tokens",
    )
    list_select_related = ("user",)
    list_filter = ("kind", "created_at")
    search_fields = ("user__username",)
    date_hierarchy = "created_at"


@admin.register(DailyUsage)
class DailyUsageAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """One row per user and day: replies started and tokens used."""

    change_list_template = "admin/chat/dailyusage/change_list.html"
    list_filter = ("kind",)
    search_fields = ("user__username",)
    date_hierarchy = "created_at"

    def changelist_view(self, request, extra_context=None):
        response = super().changelist_view(request, extra_context)
        changelist = getattr(response, "context_data", {}).get("cl")
        if changelist is None:  # a redirect or an error page
            return response
        tokens = Coalesce("prompt_tokens", 0) + Coalesce("completion_tokens", 0)
        response.context_data["daily_rows"] = (
            changelist.queryset.order_by()
            .annotate(day=TruncDate("created_at"))
            .values("day", "user__username")
            .annotate(replies=Count("id"), tokens=Coalesce(Sum(tokens), 0))
            .order_by("-day", "user__username")[:DAILY_ROWS]
        )
        return response
