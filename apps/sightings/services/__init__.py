"""The sightings services, one module per job; this package's names are their public API."""

from apps.sightings.services.actions import (
    PROMOTE_PHOTOS,
    report_exported,
    sighting_correct,
    stranger_dismiss,
    stranger_promote,
)
from apps.sightings.services.events import (
    stranger_event,
    visit_event,
)
from apps.sightings.services.grouping import (
    VISIT_FIGURES,
    VISIT_KEYS,
    sightings_record,
    stranger_assign,
    stranger_refresh,
    visit_add,
    visit_assign,
    visit_rebuild,
    visit_refresh,
)
from apps.sightings.services.privacy import consent_withdraw, person_biometrics_erase, person_export
from apps.sightings.services.sweeps import (
    for_each_organization,
    retention_purge,
    retention_purge_all,
    visits_close,
    visits_close_all,
)
from apps.sightings.services.watchlist import watchlist_add, watchlist_remove

__all__ = [
    "consent_withdraw",
    "person_biometrics_erase",
    "person_export",
    "watchlist_add",
    "watchlist_remove",
    "PROMOTE_PHOTOS",
    "VISIT_FIGURES",
    "VISIT_KEYS",
    "for_each_organization",
    "report_exported",
    "retention_purge",
    "retention_purge_all",
    "sighting_correct",
    "sightings_record",
    "stranger_assign",
    "stranger_dismiss",
    "stranger_event",
    "stranger_promote",
    "stranger_refresh",
    "visit_add",
    "visit_assign",
    "visit_event",
    "visit_rebuild",
    "visit_refresh",
    "visits_close",
    "visits_close_all",
]
