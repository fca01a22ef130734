from django import forms
from django.contrib import admin, messages
from django.utils.html import format_html

from apps.core.admin_base import TenantAdmin, TenantInline, is_platform
from apps.core.errors import ServiceError
from apps.organizations import services
from apps.organizations.models import ApiKey, Camera, Membership, Organization
from apps.recognition.models import Calibration
from apps.recognition.services import calibration_run


class CalibrationInline(TenantInline, admin.TabularInline):
    model = Calibration
    extra = 0
    can_delete = False
    fields = [
        "created_at",
        "model_name",
        "threshold",
        "target_far",
        "far",
        "frr",
        "genuine_pairs",
        "impostor_pairs",
        "applied",
    ]
    readonly_fields = fields
    max_num = 0


@admin.register(Organization)
class OrganizationAdmin(TenantAdmin):
    """Platform superusers manage all organizations; an organization's owners and admins
    see only their own, as its settings page."""

    list_display = ["name", "slug", "recognition_model", "detector", "threshold_in_use", "created_at"]
    search_fields = ["name", "slug"]
    fields = [
        "name",
        "slug",
        "recognition_model",
        "detector",
        "match_thresholds",
        "match_margin",
        "sighting_retention_days",
        "unknown_retention_days",
        "visit_gap_seconds",
        "calibration_plot",
    ]
    inlines = [CalibrationInline]
    actions = ["calibrate_and_apply"]

    def get_queryset(self, request):
        queryset = Organization.objects.all()
        return queryset if is_platform(request) else queryset.filter(pk=request.organization.pk)

    def get_readonly_fields(self, request, obj=None):
        return ["calibration_plot"] if is_platform(request) else ["slug", "calibration_plot"]

    def get_exclude(self, request, obj=None):
        return []

    def save_model(self, request, obj, form, change):
        admin.ModelAdmin.save_model(self, request, obj, form, change)

    def has_add_permission(self, request, *args):
        return is_platform(request)

    def has_delete_permission(self, request, obj=None):
        return is_platform(request)

    @admin.display(description="threshold")
    def threshold_in_use(self, organization):
        return f"{organization.threshold:.4f}"

    @admin.display(description="latest calibration")
    def calibration_plot(self, organization):
        latest = Calibration.objects.filter(organization=organization).first()
        if latest is None:
            return "None yet: run the 'Calibrate' action or `python manage.py calibrate <slug>`."
        frr = "n/a" if latest.frr is None else f"{latest.frr:.4f}"
        return format_html(
            "<div>{}: recommended {} for FAR {} (measured FAR {}, FRR {}).</div>"
            '<img src="{}" style="max-width: 900px" alt="calibration plot">',
            latest.created_at.strftime("%Y-%m-%d %H:%M"),
            f"{latest.threshold:.4f}",
            latest.target_far,
            f"{latest.far:.4f}",
            frr,
            latest.plot.url,
        )

    @admin.action(description="Calibrate the threshold from enrolled photos and apply it")
    def calibrate_and_apply(self, request, queryset):
        for organization in queryset:
            try:
                record = calibration_run(organization=organization, apply=True)
            except ServiceError as error:
                self.message_user(request, f"{organization}: {error.message}", messages.WARNING)
                continue
            self.message_user(
                request,
                f"{organization}: threshold for {record.model_name} set to {record.threshold:.4f} "
                f"(target FAR {record.target_far}, {record.genuine_pairs} genuine and "
                f"{record.impostor_pairs} impostor pairs).",
                messages.SUCCESS,
            )


@admin.register(Membership)
class MembershipAdmin(TenantAdmin):
    manager_roles = {"owner"}
    list_display = ["user", "role", "organization"]
    list_filter = ["role"]
    autocomplete_fields = ["user"]


@admin.register(Camera)
class CameraAdmin(TenantAdmin):
    list_display = ["name", "location", "organization", "created_at"]
    ordering = ["name", "pk"]  # autocomplete pages need a stable order
    search_fields = ["name", "location"]


class ApiKeyForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=ApiKey.Scope.choices, widget=forms.CheckboxSelectMultiple, initial=services.ALL_SCOPES
    )

    class Meta:
        model = ApiKey
        fields = ["name", "scopes", "camera"]


@admin.register(ApiKey)
class ApiKeyAdmin(TenantAdmin):
    """Keys are made by the service: the key is shown once, only its hash is kept."""

    form = ApiKeyForm
    list_display = ["prefix", "name", "scopes", "camera", "last_used_at", "revoked_at", "organization"]
    list_filter = ["camera"]
    autocomplete_fields = ["camera"]
    actions = ["revoke"]

    def get_readonly_fields(self, request, obj=None):
        return ["prefix", "last_used_at", "revoked_at"] if obj else []

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        organization = request.organization if not is_platform(request) else obj.organization
        api_key, raw_key = services.api_key_create(
            organization=organization,
            name=obj.name,
            scopes=form.cleaned_data["scopes"],
            camera=obj.camera,
            user=request.user,
        )
        obj.pk = api_key.pk
        obj.refresh_from_db()
        self.message_user(
            request,
            f"API key {api_key.prefix} created. Copy it now, it is shown only once: {raw_key}",
            messages.WARNING,
        )

    def log_addition(self, request, obj, message):
        return admin.ModelAdmin.log_addition(self, request, obj, message)  # the service audits creation

    @admin.action(description="Revoke the selected keys")
    def revoke(self, request, queryset):
        for api_key in queryset.filter(revoked_at__isnull=True):
            services.api_key_revoke(api_key=api_key, user=request.user)
        self.message_user(request, "Revoked.", messages.SUCCESS)

    def get_exclude(self, request, obj=None):
        return [] if is_platform(request) else ["organization"]
