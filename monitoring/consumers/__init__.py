"""The two WebSocket channels: devices stream readings in (``device``), dashboards watch wards
and patients (``dashboard``), over the frame loop they share (``frames``)."""

from monitoring.consumers.dashboard import DashboardConsumer
from monitoring.consumers.device import DeviceConsumer

__all__ = ["DashboardConsumer", "DeviceConsumer"]
