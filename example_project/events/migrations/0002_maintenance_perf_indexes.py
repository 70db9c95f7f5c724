# Written by manage.py maintenance_perf_index_migrations from the index
# plan. It builds each index concurrently on PostgreSQL, which cannot
# happen inside a transaction, hence atomic = False.

import maintenance_perf.operations
from django.db import migrations, models


class Migration(migrations.Migration):

    atomic = False

    dependencies = [
        ('events', '0001_initial'),
    ]

    operations = [
        maintenance_perf.operations.ConcurrentAddIndex(
            model_name='CalendarEvent',
            index=models.Index(fields=['event_date', 'is_completed'], name='calendar_eventdat_iscom_1247f1'),
        ),
    ]
