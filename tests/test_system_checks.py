"""The model checks Django runs on every migrate and test run pass on the database in use."""

import pytest
from django.core import checks


@pytest.mark.django_db
def test_the_model_checks_on_the_database_in_use_report_nothing():
    # With the database named, its own model checks run too (indexes it cannot build as asked),
    # as on every `manage.py migrate`.
    reported = [message for message in checks.run_checks(databases=["default"], include_deployment_checks=False)
                if message.id and message.id.startswith("models.") and not message.is_silenced()]
    assert reported == []
