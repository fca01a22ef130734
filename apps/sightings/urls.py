from django.urls import path

from apps.sightings import views

app_name = "reports"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("sightings/", views.sightings, name="sightings"),
    path("sightings/export/", views.sightings_export, name="sightings-export"),
    path("sightings/<int:sighting_id>/", views.sighting_detail, name="sighting"),
    path("sightings/<int:sighting_id>/correct/", views.sighting_correct, name="sighting-correct"),
    path("attendance/", views.attendance, name="attendance"),
    path("attendance/export/", views.attendance_export, name="attendance-export"),
    path("people/<int:person_id>/", views.person_detail, name="person"),
    path("strangers/", views.strangers, name="strangers"),
    path("strangers/<int:profile_id>/promote/", views.stranger_promote, name="stranger-promote"),
    path("strangers/<int:profile_id>/dismiss/", views.stranger_dismiss, name="stranger-dismiss"),
]
