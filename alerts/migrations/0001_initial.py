from django.db import migrations

from common.migration_ops import ModelMove


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('clinical', '0004_device_and_place_members'),
    ]

    # Alerts, their events and alarm limits move here from clinical; their tables
    # (clinical_alert, clinical_alertevent, clinical_alarmlimit) stay as they are.
    operations = [
        ModelMove(name='Alert', from_app='clinical'),
        ModelMove(name='AlertEvent', from_app='clinical'),
        ModelMove(name='AlarmLimit', from_app='clinical'),
    ]
