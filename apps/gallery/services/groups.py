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
    _audit(group, user, added=[person.pk for person in joining])
    return len(joining)


def group_remove_people(*, group: Group, people, user=None) -> int:
    """Take people out of the group; returns how many left it."""
    leaving = list(GroupMember.objects.filter(group=group, person__in=list(people)).values_list("person_id", flat=True))
    GroupMember.objects.filter(group=group, person_id__in=leaving).delete()
    _audit(group, user, removed=leaving)
    return len(leaving)


def _audit(group: Group, user, **people: list[int]) -> None:
    if any(people.values()):
        audit.record(
            organization_id=group.organization_id, action=audit.Action.CHANGED, user=user, target=group, detail=people
        )
