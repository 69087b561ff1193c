"""A reading's number is ``value`` in Python; its column keeps the name ``bpm``.

Only Django's state changes: no statement runs (``manage.py sqlmigrate monitoring 0008`` is
empty), so the partitioned readings table and its archive are left as they are, whatever
their size, and raw SQL that names the column ``bpm`` keeps working.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("monitoring", "0007_stream_replays"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RenameField(model_name=model, old_name="bpm", new_name="value")
                for model in ("reading", "readingarchive")
            ]
            + [
                migrations.AlterField(
                    model_name=model,
                    name="value",
                    field=models.SmallIntegerField(db_column="bpm"),
                )
                for model in ("reading", "readingarchive")
            ],
            database_operations=[],
        ),
    ]
