from django.urls import path

from apps.api import views

urlpatterns = [
    path("people/", views.PeopleView.as_view(), name="people"),
    path("people/<int:person_id>/faces/", views.PersonFacesView.as_view(), name="person-faces"),
    path("frames/", views.FramesView.as_view(), name="frames"),
    path("frames/<int:frame_id>/", views.FrameDetailView.as_view(), name="frame-detail"),
]
