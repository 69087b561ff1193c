"""Test support shared by every app's tests (not a production app): live server processes,
factories, API clients and assertions, WebSocket helpers, the SMTP and Celery fixtures, and
clearing the auth cache."""
