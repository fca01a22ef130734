from django import forms
from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from apps.core.admin_base import TenantAdmin, TenantInline, is_platform
from apps.core.errors import ServiceError
from apps.frames.services import calibration_run, calibration_schedule
from apps.gallery.models import GalleryReembed
from apps.gallery.services import gallery_reembed_start
from apps.organizations import services, signin
from apps.organizations.models import ApiKey, Camera, Membership, Organization
from apps.recognition.models import Calibration


class CalibrationInline(TenantInline, admin.TabularInline):
    model = Calibration
    extra = 0
    can_delete = False
    fields = [
        "created_at",
        "model_name",
        "target_fpir",
        "threshold",
        "people",
        "photos",
        "source",
        "expected_fpir",
        "expected_fnir",
    ]
    readonly_fields = fields
    max_num = 0


def _percent(value) -> str:
    return "unknown" if value is None else f"{100 * value:.2f} %"


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
        "model_change",
        "detector",
        "target_fpir",
        "threshold_in_use",
        "match_thresholds",
        "match_margin",
        "sighting_retention_days",
        "unknown_retention_days",
        "visit_gap_seconds",
        "time_zone",
        "require_second_factor",
        "require_consent",
        "enrollment_photos",
        "calibration_plot",
    ]
    inlines = [CalibrationInline]
    actions = ["calibrate_now"]

    def get_queryset(self, request):
        queryset = Organization.objects.all()
        return queryset if is_platform(request) else queryset.filter(pk=request.organization.pk)

    def get_readonly_fields(self, request, obj=None):
        shown = ["threshold_in_use", "model_change", "calibration_plot"]
        return shown if is_platform(request) else ["slug", *shown]

    def get_exclude(self, request, obj=None):
        return []

    def save_model(self, request, obj, form, change):
        new_model = obj.recognition_model
        changing_model = change and "recognition_model" in form.changed_data
        if changing_model:
            # Matching keeps the model in use until every photo has the new one's embedding.
            obj.recognition_model = form.initial["recognition_model"]
        admin.ModelAdmin.save_model(self, request, obj, form, change)
        if change and "target_fpir" in form.changed_data:
            calibration_schedule(organization_id=obj.pk)
        if changing_model:
            self._start_model_change(request, obj, new_model)
        missing = services.recognition_missing(obj)
        if missing:
            self.message_user(request, f"Warning: {missing}.", level=messages.WARNING)

    def _start_model_change(self, request, organization, model_name):
        try:
            job = gallery_reembed_start(organization=organization, model_name=model_name, user=request.user)
        except ServiceError as error:
            self.message_user(request, f"The model stays {organization.recognition_model}: {error}", messages.ERROR)
            return
        if job is None:
            self.message_user(request, f"{model_name} is the model in use; no change needed.")
            return
        self.message_user(
            request,
            format_html(
                "Embedding {} enrolled photos with {} in the background; matching uses {} until all are done, "
                'then switches. <a href="{}">Progress</a>',
                job.total,
                model_name,
                organization.recognition_model,
                reverse("admin:gallery_galleryreembed_change", args=[job.pk]),
            ),
        )

    @admin.display(description="model change")
    def model_change(self, organization):
        job = GalleryReembed.objects.filter(organization=organization).order_by("-created_at").first()
        if job is None:
            return "-"
        return format_html(
            '<a href="{}">{} → {}</a>: {} <progress value="{}" max="{}"></progress> {} / {}',
            reverse("admin:gallery_galleryreembed_change", args=[job.pk]),
            job.previous_model,
            job.model_name,
            job.get_status_display(),
            job.processed,
            job.total or 1,
            job.processed,
            job.total,
        )

    def has_add_permission(self, request, *args):
        return is_platform(request)

    def has_delete_permission(self, request, obj=None):
        return is_platform(request)

    @admin.display(description="threshold in use")
    def threshold_in_use(self, organization):
        model = organization.recognition_model
        source = organization.threshold_source_for(model)
        text = f"{organization.threshold:.4f} ({model}, "
        if source == "explicit":
            calibrated = organization.calibrated_thresholds.get(model)
            text += "explicit: overrides the target FPIR" + (
                f"; calibrated would be {calibrated:.4f})" if calibrated is not None else ")"
            )
        elif source == "calibrated":
            text += f"calibrated for target FPIR {organization.fpir_target:g})"
        else:
            text += "the model's default: not calibrated yet)"
        return text

    @admin.display(description="what to expect")
    def calibration_plot(self, organization):
        latest = Calibration.objects.filter(organization=organization).first()
        if latest is None:
            return "Not calibrated yet: it runs in the background once people are enrolled (or use 'Calibrate now')."
        growth = latest.summary.get("growth", [])
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    f"{row['people']:,}" + (" (today)" if row["people"] == latest.people else ""),
                    f"{row['photos']:,}",
                    _percent(row["fpir_at_threshold"]),
                    f"{row['threshold_for_target']:.4f}",
                    _percent(row["fnir"]),
                )
                for row in growth
            ),
        )
        return format_html(
            "<p>{}: threshold {} for target FPIR {} with {} people ({} photos; impostor tail from the {}). "
            "Expected today: {} of strangers accepted as someone, {} of enrolled people's new photos missed.</p>"
            "<table><tr><th>people</th><th>photos</th><th>strangers accepted at today's threshold</th>"
            "<th>threshold for the target</th><th>enrolled people missed at it</th></tr>{}</table>"
            '<img src="{}" style="max-width: 1000px" alt="calibration plot: impostor distances and DET curves">',
            latest.created_at.strftime("%Y-%m-%d %H:%M"),
            f"{latest.threshold:.4f}",
            f"{latest.target_fpir:g}",
            latest.people,
            latest.photos,
            latest.source,
            _percent(latest.expected_fpir),
            _percent(latest.expected_fnir),
            rows,
            latest.plot.url,
        )

    @admin.action(description="Calibrate the threshold for the target FPIR now")
    def calibrate_now(self, request, queryset):
        for organization in queryset:
            try:
                record = calibration_run(organization=organization)
            except ServiceError as error:
                self.message_user(request, f"{organization}: {error.message}", messages.WARNING)
                continue
            self.message_user(
                request,
                f"{organization}: threshold for {record.model_name} calibrated to {record.threshold:.4f} "
                f"(target FPIR {record.target_fpir:g}, {record.people} people, {record.photos} photos; "
                f"expected FPIR {_percent(record.expected_fpir)}, FNIR {_percent(record.expected_fnir)}).",
                messages.SUCCESS,
            )


@admin.register(Membership)
class MembershipAdmin(TenantAdmin):
    manager_roles = {"owner"}
    list_display = ["user", "role", "organization", "second_factor"]
    list_filter = ["role"]
    autocomplete_fields = ["user"]
    actions = ["unlock_sign_in", "reset_second_factor"]

    @admin.display(boolean=True, description="second factor")
    def second_factor(self, membership):
        return signin.has_second_factor(membership.user)

    @admin.action(description="Unlock sign-in (end a lockout after failed attempts now)")
    def unlock_sign_in(self, request, queryset):
        for membership in queryset:
            removed = signin.unlock(request, membership)
            self.message_user(request, f"{membership.user}: unlocked ({removed} failed attempts forgotten).")

    @admin.action(description="Reset second factor (a lost phone: set up a new one at the next sign-in)")
    def reset_second_factor(self, request, queryset):
        for membership in queryset:
            signin.reset_second_factor(request, membership)
            self.message_user(request, f"{membership.user}: second factor removed.")


@admin.register(Camera)
class CameraAdmin(TenantAdmin):
    list_display = ["name", "location", "organization", "created_at"]
    ordering = ["name", "pk"]  # autocomplete pages need a stable order
    search_fields = ["name", "location"]


class ApiKeyForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=ApiKey.Scope.choices, widget=forms.CheckboxSelectMultiple, initial=services.DEFAULT_SCOPES
    )

    class Meta:
        model = ApiKey
        fields = ["name", "scopes", "camera"]

    def clean(self):
        cleaned = super().clean()
        if "scopes" in cleaned:
            try:
                services.api_key_check(scopes=cleaned["scopes"], camera=cleaned.get("camera"))
            except ValueError as error:
                raise forms.ValidationError(str(error)) from None
        return cleaned


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
