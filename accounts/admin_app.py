"""Django's admin app with this project's admin site (no model imports here: loaded with the
app registry)."""

from __future__ import annotations

from django.contrib.admin.apps import AdminConfig as DjangoAdminConfig


class AdminConfig(DjangoAdminConfig):
    """``django.contrib.admin`` whose default site asks for the second factor
    (accounts/admin_site.py)."""

    default_site = "accounts.admin_site.MfaAdminSite"
