"""Django admin for organization staff: every page shows only the current organization's
rows. Platform superusers see everything (the platform path)."""

from django.contrib import admin
from django.http import Http404

from apps.core import audit

# Roles that may use the admin; viewers have the report pages only.
ADMIN_ROLES = {"owner", "admin"}


def is_platform(request) -> bool:
    return request.user.is_active and request.user.is_superuser


def staff_role(request) -> str | None:
    membership = getattr(request, "membership", None)
    return membership.role if membership else None


class TenantScopedMixin:
    """Shared by model admins and inlines."""

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if is_platform(request):
            return queryset
        return queryset.filter(organization=request.organization)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        # Choices of a foreign key: only the current organization's rows.
        related = db_field.related_model
        if not is_platform(request) and any(f.name == "organization" for f in related._meta.fields):
            kwargs["queryset"] = related._default_manager.filter(organization=request.organization)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def _may_manage(self, request) -> bool:
        return is_platform(request) or staff_role(request) in self.manager_roles

    manager_roles = ADMIN_ROLES

    def has_module_permission(self, request):
        return self._may_manage(request)

    def has_view_permission(self, request, obj=None):
        return self._may_manage(request)

    def has_add_permission(self, request, *args):
        return self._may_manage(request)

    def has_change_permission(self, request, obj=None):
        return self._may_manage(request)

    def has_delete_permission(self, request, obj=None):
        return self._may_manage(request)


class TenantAdmin(TenantScopedMixin, admin.ModelAdmin):
    def get_exclude(self, request, obj=None):
        excluded = list(super().get_exclude(request, obj) or [])
        if not is_platform(request):
            excluded.append("organization")  # set from the session, never from the form
        return excluded

    def get_list_filter(self, request):
        # Related filters list only what this organization's rows point at.
        return [
            (name, admin.RelatedOnlyFieldListFilter) if isinstance(name, str) and self._is_relation(name) else name
            for name in super().get_list_filter(request)
        ]

    def _is_relation(self, name: str) -> bool:
        try:
            return self.model._meta.get_field(name).is_relation
        except Exception:
            return False

    def get_object(self, request, object_id, from_field=None):
        # Another organization's id is a 404, exactly like an id that does not exist.
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            raise Http404("Not found.")
        return obj

    def save_model(self, request, obj, form, change):
        if not is_platform(request):
            obj.organization = request.organization  # a row can never move to another organization
        super().save_model(request, obj, form, change)

    def save_formset(self, request, form, formset, change):
        for inline_form in formset.forms:
            if not is_platform(request) and hasattr(inline_form.instance, "organization_id"):
                inline_form.instance.organization_id = form.instance.organization_id
        super().save_formset(request, form, formset, change)

    # Admin changes go to the organization's audit log as well as Django's own.
    def log_addition(self, request, obj, message):
        audit.record_model_change(request, obj, audit.Action.CREATED)
        return super().log_addition(request, obj, message)

    def log_change(self, request, obj, message):
        audit.record_model_change(request, obj, audit.Action.CHANGED)
        return super().log_change(request, obj, message)

    def log_deletions(self, request, queryset):
        for obj in queryset:
            audit.record_model_change(request, obj, audit.Action.DELETED)
        return super().log_deletions(request, queryset)


class TenantInline(TenantScopedMixin):
    pass
