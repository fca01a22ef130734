from django.urls import path

from apps.api.views import frames, gallery, kiosk, organizations, reports

urlpatterns = [
    path("people/", gallery.PeopleView.as_view(), name="people"),
    path("people/<int:person_id>/", gallery.PersonView.as_view(), name="person"),
    path("people/<int:person_id>/faces/", gallery.PersonFacesView.as_view(), name="person-faces"),
    path("people/<int:person_id>/faces/<int:face_id>/", gallery.PersonFaceView.as_view(), name="person-face"),
    path("people/<int:person_id>/export/", gallery.PersonExportView.as_view(), name="person-export"),
    path("people/<int:person_id>/consents/", gallery.PersonConsentsView.as_view(), name="person-consents"),
    path(
        "people/<int:person_id>/consents/<int:consent_id>/withdraw/",
        gallery.PersonConsentWithdrawView.as_view(),
        name="person-consent-withdraw",
    ),
    path("frames/", frames.FramesView.as_view(), name="frames"),
    path("frames/<int:frame_id>/", frames.FrameView.as_view(), name="frame"),
    path("identify/", frames.IdentifyView.as_view(), name="identify"),
    path("verify/", frames.VerifyView.as_view(), name="verify"),
    path("detect/", frames.DetectView.as_view(), name="detect"),
    path("kiosk/", kiosk.KioskInfoView.as_view(), name="kiosk"),
    path("kiosk/check-ins/", kiosk.CheckInsView.as_view(), name="check-ins"),
    path("kiosk/check-ins/<int:check_in_id>/frames/", kiosk.CheckInFramesView.as_view(), name="check-in-frames"),
    path("cameras/", organizations.CamerasView.as_view(), name="cameras"),
    path("cameras/<int:camera_id>/", organizations.CameraView.as_view(), name="camera"),
    path("sightings/", reports.SightingsView.as_view(), name="sightings"),
    path("sightings/<int:sighting_id>/", reports.SightingView.as_view(), name="sighting"),
    path("sightings/<int:sighting_id>/correct/", reports.SightingCorrectView.as_view(), name="sighting-correct"),
    path("visits/", reports.VisitsView.as_view(), name="visits"),
    path("attendance/", reports.AttendanceView.as_view(), name="attendance"),
    path("watchlist/", reports.WatchlistView.as_view(), name="watchlist"),
    path("watchlist/<int:entry_id>/", reports.WatchlistEntryView.as_view(), name="watchlist-entry"),
    path("strangers/", reports.StrangersView.as_view(), name="strangers"),
    path("strangers/<int:stranger_id>/promote/", reports.StrangerPromoteView.as_view(), name="stranger-promote"),
    path("strangers/<int:stranger_id>/dismiss/", reports.StrangerDismissView.as_view(), name="stranger-dismiss"),
]
