import pytest


@pytest.fixture(autouse=True)
def _imports_storage_in_tmp(settings, tmp_path):
    """Checked files wait in a folder of the test's own, not under the checkout's media/."""
    settings.STORAGES = {
        **settings.STORAGES,
        "imports": {**settings.STORAGES["imports"], "OPTIONS": {
            **settings.STORAGES["imports"].get("OPTIONS", {}), "location": tmp_path / "imports"}},
    }
