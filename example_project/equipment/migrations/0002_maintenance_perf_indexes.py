# Written by manage.py maintenance_perf_index_migrations from the index
# plan. It builds each index concurrently on PostgreSQL, which cannot
# happen inside a transaction, hence atomic = False.

import maintenance_perf.operations
from django.db import migrations, models


class Migration(migrations.Migration):

    atomic = False

    dependencies = [
        ('equipment', '0001_initial'),
    ]

    operations = [
        maintenance_perf.operations.ConcurrentAddIndex(
            model_name='Equipment',
            index=models.Index(fields=['location', 'status'], name='equipmen_location_statu_c478d4'),
        ),
        maintenance_perf.operations.ConcurrentAddIndex(
            model_name='Equipment',
            index=models.Index(fields=['status'], name='equipmen_status_674fc1'),
        ),
    ]
