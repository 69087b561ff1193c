"""Every channel-layer group name is built here."""

from __future__ import annotations


def ward_group(ward_id: int) -> str:
    return f"ward.{ward_id}"


def patient_group(patient_id: int) -> str:
    return f"patient.{patient_id}"


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def device_group(device_id: int) -> str:
    return f"device.{device_id}"


# The groups whose events go to dashboards: carried by the process-local live fan-out
# (``live.hub``), not by the channel layer.
LIVE_GROUP_PREFIXES = ("ward.", "patient.")


def is_live_group(group: str) -> bool:
    return group.startswith(LIVE_GROUP_PREFIXES)
