from django.contrib import admin, messages
from django.utils.html import format_html

from apps.core.errors import ServiceError
from apps.organizations.models import ApiKey, Camera, Membership, Organization
from apps.recognition.models import Calibration
from apps.recognition.services import calibration_run


class CalibrationInline(admin.TabularInline):
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
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "recognition_model", "detector", "threshold_in_use", "created_at"]
    search_fields = ["name", "slug"]
    fields = ["name", "slug", "recognition_model", "detector", "match_thresholds", "match_margin", "calibration_plot"]
    readonly_fields = ["calibration_plot"]
    inlines = [CalibrationInline]
    actions = ["calibrate_and_apply"]

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
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "organization", "role"]
    list_filter = ["role"]


@admin.register(Camera)
class CameraAdmin(admin.ModelAdmin):
    list_display = ["name", "organization", "location"]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["prefix", "name", "organization", "scopes", "last_used_at", "revoked_at"]
    readonly_fields = ["prefix", "hashed_key", "last_used_at"]
