import json
import zlib

from django.db import migrations, models


def pack_figures(apps, schema_editor):
    # The stored views keep their figures, compressed as run_summary.pack writes them.
    View = apps.get_model("valuation", "RunSummaryView")
    for view in View.objects.only("pk", "figures").iterator(chunk_size=20):
        packed = zlib.compress(json.dumps(view.figures, separators=(",", ":")).encode(), 1)
        View.objects.filter(pk=view.pk).update(packed=packed)


def unpack_figures(apps, schema_editor):
    View = apps.get_model("valuation", "RunSummaryView")
    for view in View.objects.only("pk", "packed").iterator(chunk_size=20):
        figures = json.loads(zlib.decompress(bytes(view.packed))) if view.packed else {}
        View.objects.filter(pk=view.pk).update(figures=figures)


class Migration(migrations.Migration):
    dependencies = [
        ("valuation", "0012_run_summary_views"),
    ]

    operations = [
        migrations.AddField(
            model_name="runsummaryview",
            name="packed",
            field=models.BinaryField(default=b""),
        ),
        migrations.RunPython(pack_figures, unpack_figures),
        migrations.RemoveField(
            model_name="runsummaryview",
            name="figures",
        ),
    ]
