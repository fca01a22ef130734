"""Report pages under /reports/: server-rendered, for signed-in members of the current
organization (any role). Every lookup goes through apps.core.access, so another
organization's id is a 404 like a missing one."""

import csv
from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from apps.core.access import get_for_organization
from apps.core.errors import NotFound, ServiceError
from apps.gallery.models import Consent, FaceImage, Person
from apps.sightings import charts, selectors, services
from apps.sightings.attendance import attendance_page, attendance_stream
from apps.sightings.forms import AttendanceForm, CorrectionForm, GroupForm, PromoteForm, ReportFilterForm
from apps.sightings.models import Sighting, StrangerProfile

PAGE_SIZE = 50
STRANGERS_PAGE_SIZE = 20


def report_view(view):
    """Signed in, a member of an organization; lookups outside it are 404s."""

    @login_required
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if request.organization is None:
            raise PermissionDenied("You are not a member of any organization.")
        try:
            return view(request, request.organization, *args, **kwargs)
        except NotFound:
            raise Http404("Not found.") from None

    return wrapper


@report_view
def dashboard(request, organization):
    form = GroupForm(request.GET or None, organization=organization)
    stats = selectors.dashboard(organization=organization, group=form.group_id())
    return render(
        request,
        "reports/dashboard.html",
        {
            "form": form,
            "stats": stats,
            "per_hour": charts.bar_chart("Visits per hour of day", [(f"{h:02d}", n) for h, n in stats.visits_per_hour]),
            "per_day": charts.bar_chart("Visits per day", [(f"{d:%m-%d}", n) for d, n in stats.visits_per_day]),
            "per_camera": charts.bar_chart("Visits per camera", stats.visits_per_camera),
        },
    )


def _filtered(request, organization):
    form = ReportFilterForm(request.GET or None, organization=organization)
    filters = form.filters() if form.is_valid() else {}
    view = (form.cleaned_data.get("view") if form.is_valid() else "") or "sightings"
    if view == "visits":
        rows = selectors.visits_filter(organization=organization, **filters).order_by("-started_at", "-pk")
    else:
        rows = selectors.sightings_filter(organization=organization, **filters).order_by("-seen_at", "-pk")
    return form, view, rows


@report_view
def sightings(request, organization):
    form, view, rows = _filtered(request, organization)
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "reports/sightings.html",
        {"form": form, "view": view, "page": page, "query": query.urlencode()},
    )


class _CsvLine:
    """What csv.writer writes to: each row is handed back, for a streamed response."""

    def write(self, value):
        return value


@report_view
def sightings_export(request, organization):
    """The filtered sightings or visits as CSV, streamed; recorded in the audit log."""
    form, view, rows = _filtered(request, organization)
    services.report_exported(
        organization=organization,
        report=view,
        filters={key: value for key, value in request.GET.items() if value and key != "page"},
        user=request.user,
    )
    if view == "visits":
        header = ["visit", "person", "camera", "first_seen", "last_seen", "frames", "confidence"]
        lines = (
            [
                v.pk,
                v.person.name,
                v.camera.name if v.camera else "",
                v.started_at.isoformat(),
                v.ended_at.isoformat(),
                v.frames,
                v.confidence,
            ]
            for v in rows.iterator(chunk_size=2000)
        )
    else:
        header = ["sighting", "seen_at", "camera", "person", "similarity", "distance", "threshold", "frame"]
        lines = (
            [
                s.pk,
                s.seen_at.isoformat(),
                s.camera.name if s.camera else "",
                s.person.name if s.person else "",
                s.similarity,
                s.distance,
                s.threshold,
                s.frame_id,
            ]
            for s in rows.iterator(chunk_size=2000)
        )
    return _csv_response(organization, view, header, lines)


@report_view
def attendance(request, organization):
    form = AttendanceForm(request.GET or {}, organization=organization)
    if form.is_valid():
        page = attendance_page(
            organization=organization, number=request.GET.get("page"), per_page=PAGE_SIZE, **form.filters()
        )
    else:
        page = Paginator([], PAGE_SIZE).get_page(1)
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "reports/attendance.html", {"form": form, "page": page, "query": query.urlencode()})


@report_view
def attendance_export(request, organization):
    """Attendance as CSV, in the organization's time zone; recorded in the audit log."""
    form = AttendanceForm(request.GET or {}, organization=organization)
    rows = attendance_stream(organization=organization, **form.filters()) if form.is_valid() else []
    services.report_exported(
        organization=organization,
        report="attendance",
        filters={key: value for key, value in request.GET.items() if value and key != "page"},
        user=request.user,
    )
    header = ["period", "person", "days_present", "first_seen", "last_seen", "present_seconds", "cameras", "checked_in"]
    lines = (
        [
            row.period.isoformat(),
            row.person,
            row.days,
            row.first_seen.isoformat(),
            row.last_seen.isoformat(),
            round(row.present.total_seconds()),
            "; ".join(row.cameras),
            row.checked_in.isoformat() if row.checked_in else "",
        ]
        for row in rows
    )
    return _csv_response(organization, "attendance", header, lines)


def _csv_response(organization, report: str, header: list[str], lines) -> StreamingHttpResponse:
    """`lines` streamed as a CSV download named after the organization, the report and now."""
    writer = csv.writer(_CsvLine())
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response = StreamingHttpResponse(_csv(writer, header, lines), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="{organization.slug}-{report}-{stamp}.csv"'
    return response


def _csv(writer, header, lines):
    yield writer.writerow(header)
    for line in lines:
        yield writer.writerow(line)


@report_view
def sighting_detail(request, organization, sighting_id):
    sighting = get_for_organization(
        Sighting.objects.select_related("person", "camera", "matched_face__person", "visit", "stranger"),
        organization,
        sighting_id,
    )
    return render(
        request,
        "reports/sighting.html",
        {
            "sighting": sighting,
            "correction_form": CorrectionForm(initial={"person": sighting.person_id}, organization=organization),
            "corrections": sighting.corrections.select_related("from_person", "to_person", "user"),
        },
    )


@report_view
@require_POST
def sighting_correct(request, organization, sighting_id):
    sighting = get_for_organization(Sighting, organization, sighting_id)
    form = CorrectionForm(request.POST, organization=organization)
    if not form.is_valid():
        messages.error(request, "Choose one of the people, or unknown.")
    else:
        person = form.cleaned_data["person"]
        try:
            services.sighting_correct(organization=organization, sighting=sighting, person=person, user=request.user)
        except ServiceError as error:
            messages.error(request, error.message)
        else:
            messages.success(request, f"Reassigned to {person.name if person else 'unknown'}.")
    return redirect("reports:sighting", sighting_id=sighting.pk)


@report_view
def person_detail(request, organization, person_id):
    person = get_for_organization(Person, organization, person_id)
    visits = selectors.visits_filter(organization=organization, person=person.pk).order_by("-started_at", "-pk")
    return render(
        request,
        "reports/person.html",
        {
            "person": person,
            "visits": Paginator(visits, PAGE_SIZE).get_page(request.GET.get("page")),
            "cameras": selectors.person_cameras(organization=organization, person=person),
            "photos": FaceImage.objects.filter(person=person).order_by("pk"),
        },
    )


@report_view
def strangers(request, organization):
    status = request.GET.get("status") or StrangerProfile.Status.OPEN
    if status not in StrangerProfile.Status.values:
        raise Http404("Not found.")
    page = Paginator(selectors.strangers_list(organization=organization, status=status), STRANGERS_PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    samples = selectors.stranger_samples(profiles=list(page.object_list))
    return render(
        request,
        "reports/strangers.html",
        {
            "status": status,
            "statuses": StrangerProfile.Status.values,
            "page": page,
            "profiles": [(profile, samples[profile.pk]) for profile in page.object_list],
            "consent_methods": Consent.Method.choices,
        },
    )


@report_view
@require_POST
def stranger_promote(request, organization, profile_id):
    profile = get_for_organization(StrangerProfile, organization, profile_id)
    form = PromoteForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Give the new person a name.")
        return redirect("reports:strangers")
    try:
        person = services.stranger_promote(
            organization=organization,
            profile=profile,
            name=form.cleaned_data["name"],
            consent=form.consent(),
            user=request.user,
        )
    except ServiceError as error:
        messages.error(request, error.message)
        return redirect("reports:strangers")
    messages.success(request, f"{person.name} is enrolled with the best photos of this stranger.")
    return redirect(reverse("reports:person", kwargs={"person_id": person.pk}))


@report_view
@require_POST
def stranger_dismiss(request, organization, profile_id):
    profile = get_for_organization(StrangerProfile, organization, profile_id)
    try:
        services.stranger_dismiss(organization=organization, profile=profile, user=request.user)
    except ServiceError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"Stranger #{profile.pk} dismissed.")
    return redirect("reports:strangers")
