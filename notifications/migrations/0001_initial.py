from django.db import migrations

from common.migration_ops import ModelMove


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('alerts', '0001_initial'),
    ]

    # Deliveries move here from clinical; their table (clinical_alertnotification) stays.
    operations = [
        ModelMove(name='AlertNotification', from_app='clinical'),
    ]
