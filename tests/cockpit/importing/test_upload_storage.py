"""The checked file waits between preview and commit in the "imports" storage, read and deleted
only through Django's storage API, so the commit may reach another web host than the preview."""

import datetime as dt
import io
import os

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import storages

from customers.models import Transaction
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

GOOD = b"external_id;customer_number;date;revenue;cost_of_goods;product;channel\nR-1;K-1;15.03.2024;1.234,56;100;;\n"


def upload(client, content: bytes):
    return client.post("/imports/", {"kind": "transactions", "file": io.BytesIO(content), "delimiter": ""},
                       format="multipart")


def stored_files() -> list[str]:
    try:
        return storages["imports"].listdir("")[1]
    except FileNotFoundError:
        return []


@pytest.fixture
def in_memory(settings, tmp_path):
    """A storage with no files on this host at all (like an object store shared by the hosts)."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.STORAGES = {**settings.STORAGES,
                         "imports": {"BACKEND": "django.core.files.storage.InMemoryStorage"}}
    return settings.MEDIA_ROOT


def test_preview_and_commit_go_through_the_configured_storage(client, manager, in_memory):
    CustomerFactory(number="K-1")
    client.force_login(manager)
    assert 'id="new">1<' in upload(client, GOOD).content.decode()
    assert len(stored_files()) == 1  # waiting in the in-memory storage...
    assert not in_memory.exists()  # ...and nowhere on this host's disk
    assert client.post("/imports/commit/").status_code == 302
    assert str(Transaction.objects.get(external_id="R-1").revenue) == "1234.56"
    assert stored_files() == []  # deleted after the import


def test_the_commit_imports_what_the_storage_holds(client, manager, in_memory):
    """The commit reads the file back from the storage: what it finds there is what it imports."""
    CustomerFactory(number="K-1")
    client.force_login(manager)
    upload(client, GOOD)
    [name] = stored_files()
    storage = storages["imports"]
    storage.delete(name)
    storage.save(name, ContentFile(GOOD.replace(b"1.234,56", b"99,00")))
    client.post("/imports/commit/")
    assert str(Transaction.objects.get(external_id="R-1").revenue) == "99.00"


def test_a_file_with_errors_and_a_cancelled_file_are_deleted(client, manager, in_memory):
    CustomerFactory(number="K-1")
    client.force_login(manager)
    upload(client, GOOD + b"R-2;K-404;15.03.2024;1;1;;\n")
    assert stored_files() == []
    upload(client, GOOD)
    assert len(stored_files()) == 1
    client.post("/imports/cancel/")
    assert stored_files() == []
    assert Transaction.objects.count() == 0


def test_files_older_than_a_day_are_removed_at_the_next_upload(client, manager):
    CustomerFactory(number="K-1")
    storage = storages["imports"]
    old = storage.save("a" * 32 + ".csv", ContentFile(GOOD))
    recent = storage.save("b" * 32 + ".csv", ContentFile(GOOD))
    day_and_a_bit_ago = (dt.datetime.now() - dt.timedelta(hours=25)).timestamp()
    os.utime(storage.path(old), (day_and_a_bit_ago, day_and_a_bit_ago))
    client.force_login(manager)
    upload(client, GOOD)
    left = stored_files()
    assert old not in left and recent in left and len(left) == 2


def test_an_upload_survives_a_file_removed_while_it_cleans_up(client, manager, monkeypatch):
    """Another upload, a commit or a cancel may delete a waiting file between the listing and the
    age check: the upload goes on instead of failing with a server error."""
    CustomerFactory(number="K-1")
    storage = storages["imports"]
    gone = storage.save("c" * 32 + ".csv", ContentFile(GOOD))
    listdir = type(storage).listdir

    def listed_then_removed(self, path):
        listing = listdir(self, path)
        if os.path.exists(self.path(gone)):
            os.remove(self.path(gone))  # the other request wins the race
        return listing

    monkeypatch.setattr(type(storage), "listdir", listed_then_removed)
    client.force_login(manager)
    assert 'id="new">1<' in upload(client, GOOD).content.decode()
    assert gone not in stored_files() and len(stored_files()) == 1
