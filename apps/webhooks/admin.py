from django import forms
from django.contrib import admin

from apps.core.admin_base import TenantAdmin
from apps.webhooks import services
from apps.webhooks.models import Event, WebhookDelivery, WebhookSubscription


class SubscriptionForm(forms.ModelForm):
    url = forms.URLField(max_length=500, assume_scheme="https")
    events = forms.MultipleChoiceField(choices=Event.choices, widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = WebhookSubscription
        fields = ["url", "events", "active"]


@admin.register(WebhookSubscription)
class WebhookSubscriptionAdmin(TenantAdmin):
    form = SubscriptionForm
    list_display = ["url", "events", "active", "created_at"]
    readonly_fields = ["secret"]
    fields = ["url", "events", "active", "secret"]


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(TenantAdmin):
    """The delivery log: every event sent, its attempts and the receiver's answers."""

    list_display = ["event", "subscription", "status", "attempts", "response_status", "created_at", "delivered_at"]
    list_filter = ["status", "event"]
    readonly_fields = [
        "subscription",
        "event",
        "event_id",
        "payload",
        "status",
        "attempts",
        "response_status",
        "error",
        "last_attempt_at",
        "delivered_at",
    ]
    actions = ["retry"]

    def has_add_permission(self, request, *args):
        return False

    @admin.action(description="Send again")
    def retry(self, request, queryset):
        for delivery in queryset:
            services.delivery_retry(delivery=delivery)
        self.message_user(request, f"{queryset.count()} deliveries queued again.")
