# Written by manage.py maintenance_perf_index_migrations from the index
# plan. It builds each index concurrently on PostgreSQL, which cannot
# happen inside a transaction, hence atomic = False.

import maintenance_perf.operations
from django.db import migrations, models


class Migration(migrations.Migration):

    atomic = False

    dependencies = [
        ('maintenance', '0001_initial'),
    ]

    operations = [
        maintenance_perf.operations.ConcurrentAddIndex(
            model_name='MaintenanceActivity',
            index=models.Index(fields=['equipment', 'status'], name='activity_equipmen_statu_18e848'),
        ),
        maintenance_perf.operations.ConcurrentAddIndex(
            model_name='MaintenanceActivity',
            index=models.Index(fields=['scheduled_start', 'status'], name='activity_schedule_statu_0bbd2c'),
        ),
        maintenance_perf.operations.ConcurrentAddIndex(
            model_name='MaintenanceActivity',
            index=models.Index(fields=['status', 'scheduled_end'], name='activity_status_schedul_880ca1'),
        ),
        maintenance_perf.operations.ConcurrentAddIndex(
            model_name='MaintenanceSchedule',
            index=models.Index(fields=['is_active', 'next_due_date'], name='schedule_isactive_nextd_271535'),
        ),
    ]
