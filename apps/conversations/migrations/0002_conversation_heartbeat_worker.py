# Sessions heartbeat and name their worker, so dead or hung sessions stop holding slots.

import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('conversations', '0001_initial'),
    ]

    operations = [
        migrations.AddField(
            model_name='conversation',
            name='heartbeat_at',
            field=models.DateTimeField(db_index=True, default=django.utils.timezone.now),
        ),
        migrations.AddField(
            model_name='conversation',
            name='worker_id',
            field=models.CharField(blank=True, default='', max_length=128),
        ),
        migrations.AlterField(
            model_name='conversation',
            name='end_reason',
            field=models.CharField(blank=True, choices=[('client_closed', 'client closed'), ('server_shutdown', 'server shut down'), ('session_expired', 'session expired'), ('license_revoked', 'license revoked'), ('error', 'error'), ('stale', 'heartbeat stale'), ('worker_lost', 'worker lost')], max_length=32),
        ),
    ]
