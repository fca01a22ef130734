from django.urls import path

from apps.api import views

urlpatterns = [
    path("people/", views.PeopleView.as_view(), name="people"),
    path("people/<int:person_id>/", views.PersonView.as_view(), name="person"),
    path("people/<int:person_id>/faces/", views.PersonFacesView.as_view(), name="person-faces"),
    path("people/<int:person_id>/faces/<int:face_id>/", views.PersonFaceView.as_view(), name="person-face"),
    path("frames/", views.FramesView.as_view(), name="frames"),
    path("frames/<int:frame_id>/", views.FrameView.as_view(), name="frame"),
    path("identify/", views.IdentifyView.as_view(), name="identify"),
    path("verify/", views.VerifyView.as_view(), name="verify"),
    path("detect/", views.DetectView.as_view(), name="detect"),
    path("cameras/", views.CamerasView.as_view(), name="cameras"),
    path("cameras/<int:camera_id>/", views.CameraView.as_view(), name="camera"),
    path("sightings/", views.SightingsView.as_view(), name="sightings"),
    path("sightings/<int:sighting_id>/", views.SightingView.as_view(), name="sighting"),
    path("sightings/<int:sighting_id>/correct/", views.SightingCorrectView.as_view(), name="sighting-correct"),
    path("visits/", views.VisitsView.as_view(), name="visits"),
    path("strangers/", views.StrangersView.as_view(), name="strangers"),
    path("strangers/<int:stranger_id>/promote/", views.StrangerPromoteView.as_view(), name="stranger-promote"),
    path("strangers/<int:stranger_id>/dismiss/", views.StrangerDismissView.as_view(), name="stranger-dismiss"),
]
