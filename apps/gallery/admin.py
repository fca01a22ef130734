from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db.models import Count
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from apps.core.admin_base import TenantAdmin, TenantInline, is_platform
from apps.core.errors import ServiceError
from apps.core.files import zip_response
from apps.gallery import selectors, services
from apps.gallery.models import Consent, FaceImage, GalleryImport, GalleryReembed, Group, Person
from apps.sightings import services as sighting_services


def thumbnail(file, height: int = 64) -> str:
    if not file:
        return "-"
    return format_html('<img src="{}" style="height: {}px; border-radius: 4px" alt="">', file.url, height)


class FaceImageInline(TenantInline, admin.TabularInline):
    model = FaceImage
    extra = 0
    fields = ["preview", "status", "reason", "detail", "warning_list", "created_at"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False  # photos are added with the multi-file field, through the checks

    @admin.display(description="photo")
    def preview(self, face_image):
        return thumbnail(face_image.image)

    @admin.display(description="warnings")
    def warning_list(self, face_image):
        return format_html_join("", "<div>{}</div>", ((w["message"],) for w in face_image.warnings)) or "-"


class ConsentInline(TenantInline, admin.TabularInline):
    """The person's consent records: added here (who recorded it is the signed-in user);
    withdrawn with the action of the Consents list, which erases their biometric data."""

    model = Consent
    extra = 0
    fields = ["given_at", "method", "purpose", "document", "recorded_by", "withdrawn_at"]
    readonly_fields = ["recorded_by", "withdrawn_at"]

    def has_change_permission(self, request, obj=None):
        return False  # a record of what was given: withdrawn, never edited

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Consent)
class ConsentAdmin(TenantAdmin):
    list_display = ["person", "given_at", "method", "purpose", "recorded_by", "withdrawn_at"]
    list_filter = ["method", ("withdrawn_at", admin.EmptyFieldListFilter)]
    search_fields = ["person__name", "purpose"]
    readonly_fields = ["person", "given_at", "method", "purpose", "document", "recorded_by", "withdrawn_at"]
    actions = ["withdraw"]

    def has_add_permission(self, request, *args):
        return False  # on the person's page

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Withdraw consent (erases the person's photos, embeddings and crops now)")
    def withdraw(self, request, queryset):
        for consent in queryset.filter(withdrawn_at__isnull=True).select_related("person"):
            erased = sighting_services.consent_withdraw(consent=consent, user=request.user)
            self.message_user(request, f"{consent.person}: consent withdrawn; erased {erased or 'nothing'}.")


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        files = data if isinstance(data, list | tuple) else [data]
        return [super(MultipleFileField, self).clean(f, initial) for f in files if f]


class PersonForm(forms.ModelForm):
    photos = MultipleFileField(required=False, help_text="Enrollment photos (select several at once).")

    class Meta:
        model = Person
        fields = ["name", "external_id"]


class ImportForm(forms.Form):
    archive = forms.FileField(
        help_text="A zip with one folder per person, named after the person, holding their photos."
    )


class GroupChoiceForm(forms.Form):
    group = forms.ModelChoiceField(queryset=Group.objects.none())

    def __init__(self, *args, organization_ids, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["group"].queryset = Group.objects.filter(organization_id__in=organization_ids)


@admin.register(Group)
class GroupAdmin(TenantAdmin):
    list_display = ["name", "people_count", "created_at"]
    search_fields = ["name"]
    fields = ["name"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(people_total=Count("members"))

    @admin.display(description="people", ordering="people_total")
    def people_count(self, group):
        return group.people_total


@admin.register(Person)
class PersonAdmin(TenantAdmin):
    form = PersonForm
    list_display = ["name", "external_id", "photos_count", "embeddings_count", "enrollment", "consent", "created_at"]
    search_fields = ["name", "external_id"]
    inlines = [ConsentInline, FaceImageInline]
    list_filter = ["groups"]
    actions = ["re_embed", "add_to_group", "remove_from_group", "export"]
    change_list_template = "admin/gallery/person/change_list.html"

    def get_queryset(self, request):
        return selectors.with_consent_state(
            selectors.with_enrolled_photos(
                super()
                .get_queryset(request)
                .annotate(
                    photo_total=Count("face_images", distinct=True), embedding_total=Count("embeddings", distinct=True)
                )
            )
        )

    @admin.display(description="enrollment", ordering="enrolled_photos")
    def enrollment(self, person):
        count = selectors.enrolled_photos(person)
        strength = selectors.enrollment_strength(count)
        if strength == "strong":
            return f"strong ({count} photos)"
        return format_html(
            '<strong style="color: #b45309">{}</strong> ({} enrolled; {} recommended)',
            strength,
            count,
            settings.RECOGNITION_RECOMMENDED_PHOTOS,
        )

    @admin.display(description="photos", ordering="photo_total")
    def photos_count(self, person):
        return person.photo_total

    @admin.display(description="embeddings", ordering="embedding_total")
    def embeddings_count(self, person):
        return person.embedding_total

    @admin.display(description="consent")
    def consent(self, person):
        return selectors.consent_state(person)

    def save_formset(self, request, form, formset, change):
        added = [f.instance for f in formset.forms if f.instance.pk is None and f.has_changed()]
        for consent in added:
            if isinstance(consent, Consent):
                consent.recorded_by = request.user
        super().save_formset(request, form, formset, change)
        for consent in added:
            if isinstance(consent, Consent) and consent.pk:
                services.consent_recorded_audit(consent, user=request.user)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        for upload in form.cleaned_data.get("photos") or []:
            try:
                services.face_image_add(person=form.instance, data=upload.read())
            except ServiceError as error:
                self.message_user(request, f"{upload.name}: {error.message}", messages.ERROR)

    def delete_model(self, request, obj):
        services.person_delete(person=obj, user=request.user)

    def delete_queryset(self, request, queryset):
        for person in queryset:
            services.person_delete(person=person, user=request.user)

    def log_deletions(self, request, queryset):
        return admin.ModelAdmin.log_deletions(self, request, queryset)  # erasure is audited by the service

    @admin.action(description="Re-embed the selected people's photos")
    def re_embed(self, request, queryset):
        count = 0
        for face_image in FaceImage.objects.filter(person__in=queryset):
            services.face_image_enqueue(face_image, again=True)
            count += 1
        self.message_user(request, f"{count} photos queued for embedding.", messages.SUCCESS)

    @admin.action(description="Export everything held about the person (one at a time)")
    def export(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Select one person to export.", messages.ERROR)
            return None
        person = queryset.get()
        return zip_response(sighting_services.person_export(person=person, user=request.user), f"person-{person.pk}")

    @admin.action(description="Add the selected people to a group")
    def add_to_group(self, request, queryset):
        return self._group_action(request, queryset, "add_to_group", services.group_add_people, "added to")

    @admin.action(description="Remove the selected people from a group")
    def remove_from_group(self, request, queryset):
        return self._group_action(request, queryset, "remove_from_group", services.group_remove_people, "removed from")

    def _group_action(self, request, queryset, action: str, service, done: str):
        """A page that asks which group, then applies `service` to the selected people."""
        organization_ids = set(queryset.values_list("organization_id", flat=True))
        form = GroupChoiceForm(request.POST if "apply" in request.POST else None, organization_ids=organization_ids)
        if form.is_valid():
            group = form.cleaned_data["group"]
            try:
                count = service(group=group, people=queryset, user=request.user)
            except ServiceError as error:
                self.message_user(request, error.message, messages.ERROR)
                return None
            self.message_user(request, f"{count} people {done} {group.name}.", messages.SUCCESS)
            return None
        return TemplateResponse(
            request,
            "admin/gallery/person/group_action.html",
            {
                **self.admin_site.each_context(request),
                "title": self.get_actions(request)[action][2],
                "opts": self.model._meta,
                "people": queryset,
                "form": form,
                "action": action,
                "checkbox_name": ACTION_CHECKBOX_NAME,
            },
        )

    def get_urls(self):
        return [
            path("import/", self.admin_site.admin_view(self.import_view), name="gallery_person_import"),
            *super().get_urls(),
        ]

    def import_view(self, request):
        if not self.has_add_permission(request):
            raise PermissionError
        form = ImportForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            organization = request.organization
            if organization is None:
                self.message_user(request, "Choose an organization first.", messages.ERROR)
            else:
                try:
                    job = services.gallery_import_start(
                        organization=organization, archive=form.cleaned_data["archive"].read(), user=request.user
                    )
                except ServiceError as error:
                    form.add_error("archive", error.message)
                else:
                    return redirect(reverse("admin:gallery_galleryimport_change", args=[job.pk]))
        context = {
            **self.admin_site.each_context(request),
            "form": form,
            "title": "Import people from a zip",
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/gallery/person/import.html", context)


class BackgroundJobAdmin(TenantAdmin):
    """A job the service runs in the background: read-only, with its progress, and a
    page that refreshes itself while the job runs."""

    change_form_template = "admin/gallery/galleryimport/change_form.html"

    @admin.display(description="progress")
    def progress(self, job):
        percent = round(100 * job.processed / job.total) if job.total else 100
        return format_html(
            '<progress value="{}" max="{}"></progress> {} / {} ({}%)',
            job.processed,
            job.total or 1,
            job.processed,
            job.total,
            percent,
        )

    def has_add_permission(self, request, *args):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        return self._may_manage(request)

    def get_exclude(self, request, obj=None):
        return [] if is_platform(request) else ["organization"]


@admin.register(GalleryImport)
class GalleryImportAdmin(BackgroundJobAdmin):
    list_display = ["id", "status", "progress", "people_created", "photos_added", "created_at"]
    readonly_fields = [
        "status",
        "progress",
        "people_created",
        "photos_added",
        "problem_list",
        "created_by",
        "created_at",
        "finished_at",
    ]
    fields = readonly_fields

    @admin.display(description="problems")
    def problem_list(self, job):
        return format_html_join("", "<div>{}: {}</div>", ((p["file"], p["message"]) for p in job.problems)) or "-"


@admin.register(GalleryReembed)
class GalleryReembedAdmin(BackgroundJobAdmin):
    """Progress of a model change (started by changing the organization's model)."""

    list_display = ["id", "previous_model", "model_name", "status", "progress", "created_at", "switched_at"]
    readonly_fields = [
        "previous_model",
        "model_name",
        "status",
        "progress",
        "problem_list",
        "error",
        "created_by",
        "created_at",
        "switched_at",
        "finished_at",
    ]
    fields = readonly_fields

    @admin.display(description="photos without a face for the new model")
    def problem_list(self, job):
        return (
            format_html_join("", "<div>photo #{}: {}</div>", ((p["face_image"], p["message"]) for p in job.problems))
            or "-"
        )
