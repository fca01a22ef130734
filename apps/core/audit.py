"""The organization's audit log."""

from apps.core.models import AuditEvent

Action = AuditEvent.Action


def record(*, organization_id: int, action: str, user=None, api_key=None, target=None, detail=None) -> AuditEvent:
    return AuditEvent.objects.create(
        organization_id=organization_id,
        action=action,
        user=user if user is not None and user.is_authenticated else None,
        api_key_prefix=api_key.prefix if api_key is not None else "",
        target_type=target._meta.label if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        target_repr=str(target)[:200] if target is not None else "",
        detail=detail or {},
    )


def record_model_change(request, obj, action: str) -> None:
    organization_id = getattr(obj, "organization_id", None)
    if organization_id is None and obj._meta.label == "organizations.Organization":
        organization_id = obj.pk
    if organization_id is not None:
        record(organization_id=organization_id, action=action, user=request.user, target=obj)
