"""The watched folder opens regular files only: a symbolic link is never followed and a file over the
size cap is refused before a byte of it is read. Invalid files from one sender make one group."""

from __future__ import annotations

import builtins
import os
from pathlib import Path

import pytest

from connectors.einvoice import InvalidEInvoice
from connectors.einvoice.ubl import MAX_BYTES
from sync.jobs.einvoice_inbox import read_inbox_file, scan_folder
from tests.support.einvoices import CII, FIXTURES
from workbench.models import Document, ExceptionItem

pytestmark = pytest.mark.django_db
SECRET = "root:x:0:0:the-target-of-the-link:/root:/bin/bash"
MIN_VAT = (FIXTURES / "bis-billing-3-testfiles" / "Invoice-Min_content_with_VAT.xml").read_bytes()


@pytest.fixture
def opened(monkeypatch):
    """Every path this process opens or reads by name while the test runs."""
    paths: list[str] = []
    for owner, name in ((os, "open"), (builtins, "open")):
        real = getattr(owner, name)

        def spy(file, *args, _real=real, **kwargs):
            if isinstance(file, str | bytes | os.PathLike):
                paths.append(os.fsdecode(file))
            return _real(file, *args, **kwargs)

        monkeypatch.setattr(owner, name, spy)
    real_read_bytes = Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", lambda self: paths.append(str(self)) or real_read_bytes(self))
    return paths


def _everything_stored() -> str:
    items = ExceptionItem.objects.values_list("message", "detail", "search")
    return repr(list(items)) + repr(list(Document.objects.values_list("name", "number")))


def test_a_symbolic_link_is_refused_and_never_followed(tmp_path, opened, caplog):
    secret = tmp_path / "passwd"
    secret.write_text(SECRET)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "invoice.xml").symlink_to(secret)

    assert scan_folder(inbox) == {"received": 0, "rejected": 1, "duplicates": 0}

    assert not [p for p in opened if Path(p).name in ("invoice.xml", "passwd")]
    item = ExceptionItem.objects.get(code="INVALID_EINVOICE")
    assert "invoice.xml (watched folder)" in item.message and "symbolic link" in item.message
    assert "never follows links" in item.message and str(secret) not in item.message
    assert "the-target-of-the-link" not in _everything_stored() + caplog.text
    moved = inbox / "rejected" / "invoice.xml"
    assert moved.is_symlink() and secret.read_text() == SECRET  # the link moved aside, its target untouched


def test_a_link_swapped_in_after_the_check_is_not_followed_either(tmp_path, monkeypatch):
    secret = tmp_path / "passwd"
    secret.write_text(SECRET)
    link = tmp_path / "invoice.xml"
    link.symlink_to(secret)
    real_lstat = os.lstat
    # The first look sees a regular file (what was there a moment before); the open gets the link.
    looks = iter([real_lstat(secret)])
    monkeypatch.setattr(os, "lstat", lambda path, *a, **kw: next(looks, None) or real_lstat(path, *a, **kw))
    with pytest.raises(InvalidEInvoice) as info:
        read_inbox_file(link)
    assert info.value.code == "link"


def test_an_oversized_file_is_refused_without_reading_it(tmp_path, opened):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    big = inbox / "big.xml"
    with big.open("wb") as f:
        f.truncate(26 * 1024 * 1024)  # sparse: 26 MB that take no disk
    assert big.stat().st_size > MAX_BYTES
    opened.clear()

    assert scan_folder(inbox) == {"received": 0, "rejected": 1, "duplicates": 0}

    assert not [p for p in opened if Path(p).name == "big.xml"]
    item = ExceptionItem.objects.get(code="INVALID_EINVOICE")
    assert "The file is 26.0 MB; e-invoices over 25 MB are not accepted." in item.message
    assert (inbox / "rejected" / "big.xml").exists()


def test_a_folder_or_pipe_named_like_an_invoice_is_refused(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "folder.xml").mkdir()
    os.mkfifo(inbox / "pipe.xml")  # opening it for reading would wait for a writer

    assert scan_folder(inbox) == {"received": 0, "rejected": 2, "duplicates": 0}
    assert ExceptionItem.objects.filter(message__contains="not a regular file").count() == 2


def test_a_regular_file_is_still_read_and_received(tmp_path, opened):
    (tmp_path / "good.xml").write_bytes(MIN_VAT)
    assert read_inbox_file(tmp_path / "good.xml") == MIN_VAT
    assert [Path(p).name for p in opened] == ["good.xml"]  # (the spy sees what it should)
    assert scan_folder(tmp_path) == {"received": 1, "rejected": 0, "duplicates": 0}


def test_invalid_files_from_one_sender_are_one_group_whatever_their_errors(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "a.xml").write_bytes(MIN_VAT.replace(b'unitCode="MON">1<', b'unitCode="MON">abc<', 1))
    (inbox / "b.xml").write_bytes(MIN_VAT.replace(b"<cbc:IssueDate>2018-07-31<", b"<cbc:IssueDate>yesterday<", 1))
    other = MIN_VAT.replace("Säljbolaget AB".encode(), b"Other Supplier Ltd")
    (inbox / "c.xml").write_bytes(other.replace(b'unitCode="MON">1<', b'unitCode="MON">x<', 1))
    (inbox / "d.xml").write_bytes(CII[0].read_bytes())  # no UBL supplier to read: the folder's group
    (inbox / "e.xml").symlink_to(inbox / "a.xml")
    with (inbox / "f.xml").open("wb") as f:
        f.truncate(MAX_BYTES + 1)

    assert scan_folder(inbox)["rejected"] == 6

    items = {i.detail["file"]: i for i in ExceptionItem.objects.filter(code="INVALID_EINVOICE")}
    assert len(items) == 6 and all(i.group_id for i in items.values())
    assert items["a.xml"].group_id == items["b.xml"].group_id
    assert "Säljbolaget AB" in items["a.xml"].group.title
    assert items["c.xml"].group_id != items["a.xml"].group_id and "Other Supplier Ltd" in items["c.xml"].group.title
    assert items["d.xml"].group_id == items["e.xml"].group_id == items["f.xml"].group_id
    assert "watched folder" in items["d.xml"].group.title
