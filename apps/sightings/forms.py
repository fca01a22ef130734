from datetime import datetime, time, timedelta

from django import forms
from django.utils import timezone

from apps.gallery.models import Consent, Group, Person
from apps.organizations.models import Camera
from apps.sightings.attendance import attendance_range


class ReportFilterForm(forms.Form):
    """The filters of the sightings and visits pages, and of their CSV export."""

    view = forms.ChoiceField(choices=[("sightings", "Sightings"), ("visits", "Visits")], required=False)
    person = forms.ModelChoiceField(queryset=Person.objects.none(), required=False)
    group = forms.ModelChoiceField(queryset=Group.objects.none(), required=False)
    camera = forms.ModelChoiceField(queryset=Camera.objects.none(), required=False)
    since = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}), label="From")
    until = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}), label="To")
    known = forms.ChoiceField(
        choices=[("", "Known and unknown"), ("yes", "Known"), ("no", "Unknown")], required=False, label="Faces"
    )
    min_similarity = forms.FloatField(
        required=False,
        min_value=0,
        max_value=1,
        label="Min. similarity",
        widget=forms.NumberInput(attrs={"step": 0.05}),
    )

    def __init__(self, *args, organization, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["person"].queryset = Person.objects.filter(organization=organization).order_by("name")
        self.fields["group"].queryset = Group.objects.filter(organization=organization).order_by("name")
        self.fields["camera"].queryset = Camera.objects.filter(organization=organization).order_by("name")

    def filters(self) -> dict:
        """The selectors' keyword arguments; `until` includes the whole day."""
        data = self.cleaned_data
        return {
            "person": data["person"].pk if data.get("person") else None,
            "group": data["group"].pk if data.get("group") else None,
            "camera": data["camera"].pk if data.get("camera") else None,
            "since": _day_start(data["since"]) if data.get("since") else None,
            "until": _day_start(data["until"] + timedelta(days=1)) if data.get("until") else None,
            "known": {"yes": True, "no": False}.get(data.get("known") or ""),
            "min_similarity": data.get("min_similarity"),
        }


def _day_start(day) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


class CorrectionForm(forms.Form):
    """Reassign a sighting: to another person, or (empty) to unknown."""

    person = forms.ModelChoiceField(queryset=Person.objects.none(), required=False, empty_label="Unknown (nobody)")

    def __init__(self, *args, organization, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["person"].queryset = Person.objects.filter(organization=organization).order_by("name")


class PromoteForm(forms.Form):
    name = forms.CharField(max_length=200)
    # Where the organization requires consent: the new person's, recorded with them.
    consent_method = forms.ChoiceField(choices=Consent.Method.choices, required=False)
    consent_purpose = forms.CharField(max_length=300, required=False)

    def consent(self) -> dict | None:
        method, purpose = self.cleaned_data["consent_method"], self.cleaned_data["consent_purpose"]
        return {"method": method, "purpose": purpose} if method else None


class AttendanceForm(forms.Form):
    """The attendance page's choices; days of the organization's time zone. Without
    dates: the current week, Monday to today."""

    period = forms.ChoiceField(
        choices=[("day", "Per day"), ("week", "Per week"), ("month", "Per month")], required=False
    )
    person = forms.ModelChoiceField(queryset=Person.objects.none(), required=False)
    group = forms.ModelChoiceField(queryset=Group.objects.none(), required=False)
    camera = forms.ModelChoiceField(queryset=Camera.objects.none(), required=False)
    since = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}), label="From")
    until = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}), label="To")

    def __init__(self, *args, organization, **kwargs):
        super().__init__(*args, **kwargs)
        self.organization = organization
        self.fields["person"].queryset = Person.objects.filter(organization=organization).order_by("name")
        self.fields["group"].queryset = Group.objects.filter(organization=organization).order_by("name")
        self.fields["camera"].queryset = Camera.objects.filter(organization=organization).order_by("name")

    def clean(self):
        data = super().clean()
        try:
            data["since"], data["until"] = attendance_range(
                organization=self.organization, since=data.get("since"), until=data.get("until")
            )
        except ValueError as error:
            raise forms.ValidationError(str(error)) from None
        return data

    def filters(self) -> dict:
        """attendance()'s keyword arguments."""
        data = self.cleaned_data
        return {
            "period": data.get("period") or "day",
            "person": data["person"].pk if data.get("person") else None,
            "group": data["group"].pk if data.get("group") else None,
            "camera": data["camera"].pk if data.get("camera") else None,
            "since": data["since"],
            "until": data["until"],
        }


class GroupForm(forms.Form):
    """The dashboard's one filter."""

    group = forms.ModelChoiceField(queryset=Group.objects.none(), required=False, empty_label="Everybody")

    def __init__(self, *args, organization, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["group"].queryset = Group.objects.filter(organization=organization).order_by("name")

    def group_id(self) -> int | None:
        return self.cleaned_data["group"].pk if self.is_valid() and self.cleaned_data.get("group") else None
