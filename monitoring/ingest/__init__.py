"""Ingest: the per-process batcher that stores, broadcasts and acknowledges device readings
(``batcher``), and the device presence it keeps (``presence``)."""
