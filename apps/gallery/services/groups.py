"""Groups of people: a department, a class, a shift."""

from apps.core import audit
from apps.core.errors import ServiceError
from apps.gallery.models import Group, GroupMember


def group_add_people(*, group: Group, people, user=None) -> int:
    """Put people into the group (those already in it stay once); returns how many joined."""
    people = list(people)
    if any(person.organization_id != group.organization_id for person in people):
        raise ServiceError("People and group must be of one organization.", field="people")
    already = set(GroupMember.objects.filter(group=group).values_list("person_id", flat=True))
    joining = [person for person in people if person.pk not in already]
    GroupMember.objects.bulk_create(
        [GroupMember(organization_id=group.organization_id, group=group, person=person) for person in joining],
        ignore_conflicts=True,  # a concurrent add of the same person
    )
    if joining:
        audit.record(
            organization_id=group.organization_id,
            action=audit.Action.CHANGED,
            user=user,
            target=group,
            detail={"added": [person.pk for person in joining]},
        )
    return len(joining)


def group_remove_people(*, group: Group, people, user=None) -> int:
    removed, _ = GroupMember.objects.filter(group=group, person__in=[p.pk for p in people]).delete()
    if removed:
        audit.record(
            organization_id=group.organization_id,
            action=audit.Action.CHANGED,
            user=user,
            target=group,
            detail={"removed": [person.pk for person in people]},
        )
    return removed
