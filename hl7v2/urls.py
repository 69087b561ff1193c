from __future__ import annotations

from django.urls import include, path

from hl7v2 import views

# A place's HL7 senders: /api/places/<place_id>/hl7-senders/...
sender_urls = [
    path("", views.Hl7SenderListView.as_view(), name="hl7-sender-list"),
    path("<int:sender_id>/", views.Hl7SenderDetailView.as_view(), name="hl7-sender-detail"),
]

urlpatterns = [
    path("places/<int:place_id>/hl7-senders/", include(sender_urls)),
]
