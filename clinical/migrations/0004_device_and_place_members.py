from django.conf import settings
from django.db import migrations, models

from common.migration_ops import ModelMove


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0003_place_membership_moves_to_clinical'),
        ('clinical', '0003_alarm_limits'),
        ('monitoring', '0001_initial'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    # Devices move here from monitoring (table monitoring_device), and the membership of a place
    # is declared on Place (table accounts_user_places): nothing changes in the database.
    operations = [
        ModelMove(name='Device', from_app='monitoring'),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddField(
                    model_name='place',
                    name='members',
                    field=models.ManyToManyField(blank=True, db_table='accounts_user_places', related_name='places', to=settings.AUTH_USER_MODEL),
                ),
            ],
            database_operations=[],
        ),
    ]
