from __future__ import annotations

from django.urls import path

from hl7v2 import views

urlpatterns = [
    path(
        "places/<int:place_id>/hl7-senders/",
        views.Hl7SenderListView.as_view(),
        name="hl7-sender-list",
    ),
    path(
        "places/<int:place_id>/hl7-senders/<int:sender_id>/",
        views.Hl7SenderDetailView.as_view(),
        name="hl7-sender-detail",
    ),
]
