from django.contrib import admin

from apps.gallery.models import FaceImage, Person


class FaceImageInline(admin.TabularInline):
    model = FaceImage
    extra = 0
    fields = ["image", "status", "reason", "detail", "warnings", "created_at"]
    readonly_fields = ["status", "reason", "detail", "warnings", "created_at"]


@admin.register(Person)
class PersonAdmin(admin.ModelAdmin):
    list_display = ["name", "external_id", "organization", "created_at"]
    search_fields = ["name", "external_id"]
    inlines = [FaceImageInline]

    def save_formset(self, request, form, formset, change):
        from apps.gallery.services import face_image_enqueue

        instances = formset.save(commit=False)
        for instance in instances:
            instance.organization_id = form.instance.organization_id
            instance.save()
            face_image_enqueue(instance)
        for obj in formset.deleted_objects:
            obj.delete()
