"""Development tooling, not a production app: the load benchmark (``manage.py loadtest``), the
device simulator (``manage.py simulate``) and the demo data (``manage.py seed_demo``). Installed
so that its management commands exist; it has no models and serves nothing."""
