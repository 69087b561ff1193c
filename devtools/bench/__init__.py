"""The load benchmark behind ``manage.py loadtest`` (``make bench``; docs/performance.md).

It drives a running server over real WebSockets and HTTP:

- ``stream`` and ``idle`` (stream.py): devices streaming readings while dashboards watch;
  ack and end-to-end latency, deliveries, memory per idle connection.
- ``rest`` (rest.py): POST /api/records/ batches with a device token; readings stored per second.
- ``history`` (history.py): 24 h of 4 Hz readings for one patient, then the time of the
  1-minute bucketed history request.

The fixture (fixture.py: a bench place, wards, patients, devices with tokens, a nurse and a
JWT) is made through the ORM in this process and removed afterwards unless ``keep`` is set.
ORM calls run outside the event loop; everything on the wire runs inside it. servers.py starts
the Daphne processes under load, sampler.py measures them, stats.py and report.py turn the
counts into figures.
"""
