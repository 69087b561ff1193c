"""The load benchmark behind ``manage.py loadtest``."""
