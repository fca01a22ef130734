"""Webhook payloads of visits, strangers and the watchlist."""

from apps.core.urls import absolute_url
from apps.sightings.models import Sighting, StrangerProfile, Visit, WatchlistEntry


def _media_url(file) -> str | None:
    return absolute_url(file.url) if file else None


def _camera(camera) -> dict | None:
    return {"id": camera.pk, "name": camera.name} if camera is not None else None


def visit_event(visit: Visit) -> dict:
    """A webhook's `data` for visit.started and visit.ended. The crop link needs the
    organization's credentials (an API key), like every media URL."""
    best = visit.best_sighting
    return {
        "visit": {
            "id": visit.pk,
            "person": {"id": visit.person_id, "name": visit.person.name},
            "camera": _camera(visit.camera),
            "first_seen": visit.started_at.isoformat(),
            "last_seen": visit.ended_at.isoformat(),
            "frames": visit.frames,
            "confidence": visit.confidence,
            "crop_url": _media_url(best.crop) if best is not None else None,
        }
    }


def _sighting(sighting: Sighting) -> dict:
    return {
        "id": sighting.pk,
        "seen_at": sighting.seen_at.isoformat(),
        "camera": _camera(sighting.camera),
        "crop_url": _media_url(sighting.crop),
    }


def watchlist_event(entry: WatchlistEntry, sighting: Sighting) -> dict:
    """watchlist.seen: who (a person, or a stranger profile), why, who put them there."""
    watched = (
        {"person": {"id": entry.person_id, "name": entry.person.name}}
        if entry.person_id
        else {"stranger": {"id": entry.stranger_id}}
    )
    return {
        "watchlist": {
            "id": entry.pk,
            "reason": entry.reason,
            "added_by": entry.added_by.get_username() if entry.added_by else None,
            "added_at": entry.created_at.isoformat(),
        },
        **watched,
        "sighting": _sighting(sighting),
    }


def stranger_event(profile: StrangerProfile, sighting: Sighting) -> dict:
    return {
        "stranger": {
            "id": profile.pk,
            "first_seen": profile.first_seen.isoformat(),
            "last_seen": profile.last_seen.isoformat(),
            "sightings": profile.sightings_count,
        },
        "sighting": _sighting(sighting),
    }


# What grouping reads of a visit: whose and where it is, and the figures it keeps up to date.
