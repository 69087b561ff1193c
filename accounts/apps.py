from __future__ import annotations

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        from axes.signals import user_locked_out

        from accounts.receivers import lockout_record

        user_locked_out.connect(lockout_record, dispatch_uid="accounts.lockout_record")
