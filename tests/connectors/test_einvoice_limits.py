"""E-invoice validation is bounded: a file within the 25 MB cap cannot take a worker's memory or time
(counted in a streaming pass before the tree is built), and one upload never waits for another."""

from __future__ import annotations

import itertools
import json
import string
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from connectors.einvoice import InvalidEInvoice, parse_einvoice, ubl, validate_ubl

ROOT = Path(__file__).resolve().parent.parent.parent
BIS = ROOT / "tests" / "fixtures" / "peppol" / "bis-billing-3-testfiles"
MIN_VAT = (BIS / "Invoice-Min_content_with_VAT.xml").read_bytes()
HEAD = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"'
)
BOMB_ATTRIBUTES = 2_500_000
RSS_LIMIT_MB = 300


def _names():
    """a, b, ..., Z, aa, ab, ...: distinct attribute names, as short as they come."""
    for size in itertools.count(1):
        for letters in itertools.product(string.ascii_letters, repeat=size):
            yield "".join(letters).encode()


def _attribute_bomb(path: Path, *, per_element: int) -> None:
    """~24 MB of well-formed UBL-rooted XML holding 2.5 million attributes, written in pieces."""
    names = _names()
    attributes = b"".join(b' %s="%s"' % (next(names), b"x" * 4) for _ in range(per_element))
    with path.open("wb") as f:
        if per_element == BOMB_ATTRIBUTES:  # all on the root
            f.write(HEAD)
            for _ in range(BOMB_ATTRIBUTES // 100_000):
                f.write(b"".join(b' %s="xy"' % next(names) for _ in range(100_000)))
            f.write(b"/>")
        else:
            f.write(HEAD + b">")
            f.write((b"<x" + attributes + b"/>\n") * (BOMB_ATTRIBUTES // per_element))
            f.write(b"</Invoice>")


CHILD = """
import json, resource, sys
sys.path.insert(0, sys.argv[1])
from connectors.einvoice import InvalidEInvoice, validate_ubl
content = open(sys.argv[2], "rb").read()
try:
    validate_ubl(content)
    out = {"code": "valid", "message": ""}
except InvalidEInvoice as exc:
    out = {"code": exc.code, "message": exc.message}
out["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
"""


@pytest.mark.parametrize("per_element", [25, BOMB_ATTRIBUTES], ids=["many-elements", "one-element"])
def test_an_attribute_bomb_is_refused_in_bounded_memory(tmp_path, per_element):
    path = tmp_path / "bomb.xml"
    _attribute_bomb(path, per_element=per_element)
    assert 22_000_000 < path.stat().st_size < ubl.MAX_BYTES
    # A process of its own, so that its peak RSS is this validation's (plus Python, lxml and the file);
    # started by a small Python in between, because Linux carries the peak of a forked process's
    # memory (this big test process, copied) over its exec into the child's ru_maxrss.
    trampoline = "import subprocess, sys; sys.exit(subprocess.run(sys.argv[1:]).returncode)"
    run = subprocess.run(
        [sys.executable, "-c", trampoline, sys.executable, "-c", CHILD, str(ROOT), str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    out = json.loads(run.stdout)
    print(f"peak RSS of the validating process: {out['peak_mb']:.0f} MB ({per_element} attributes per element)")
    assert out["code"] == "too_complex", out
    assert out["message"].startswith("The file is too complex to check:") and "attributes" in out["message"]
    assert ("500,000" if per_element == 25 else "at most 100") in out["message"]
    assert out["peak_mb"] < RSS_LIMIT_MB, out


def _wrapped(body: bytes) -> bytes:
    return HEAD + b">" + body + b"</Invoice>"


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (_wrapped(b"<a/>" * 200_000), "more than 200,000 elements (the limit for an e-invoice)"),
        (_wrapped(b"<!---->" * 200_000), "more than 200,000 elements"),
        (_wrapped(b"<?pi x?>" * 200_000), "more than 200,000 elements"),
        (_wrapped(b"<a>" * 100 + b"</a>" * 100), "nested more than 100 deep"),
        (_wrapped(b"<a " + b" ".join(b'a%d="1"' % i for i in range(101)) + b"/>"), "an element with 101 attributes"),
        (_wrapped(b"<a " + b" ".join(b'xmlns:p%d="u"' % i for i in range(101)) + b"/>"), "with 101 attributes"),
        (_wrapped(b'<a a="1" b="2" c="3" d="4" e="5"/>' * 100_001), "more than 500,000 attributes"),
    ],
    ids=["elements", "comments", "processing-instructions", "depth", "attributes-of-one", "namespaces", "attributes"],
)
def test_each_limit_is_named_in_the_refusal(content, words):
    with pytest.raises(InvalidEInvoice) as info:
        validate_ubl(content)
    assert info.value.code == "too_complex" and words in info.value.message, info.value.message


def test_just_under_the_limits_the_file_is_read_and_judged_by_the_schema():
    error = pytest.raises(InvalidEInvoice, validate_ubl, _wrapped(b"<a>" * 98 + b"</a>" * 98)).value
    assert error.code == "schema" and "This element is not expected" in error.message


def test_a_file_with_thousands_of_schema_errors_reports_the_first_few_without_a_long_wait():
    # lxml works out each error's node path by walking its preceding siblings: 50,000 bad siblings
    # took ~20 s (190,000 took 200 s) when every error was collected.
    notes = b'<cbc:Note x="1">n</cbc:Note>' * 50_000
    content = MIN_VAT.replace(b"</cbc:InvoiceTypeCode>", b"</cbc:InvoiceTypeCode>" + notes, 1)
    with pytest.raises(InvalidEInvoice) as info:
        parse_einvoice(content)
    error = info.value
    assert error.code == "schema" and len(error.errors) == ubl.MAX_ERRORS
    assert "The attribute 'x' is not allowed" in error.message and "more than 200 schema errors" in error.message
    assert error.summary["number"] == "2018-112"


def test_a_large_attachment_still_validates():
    # 12 MB of base64 in one text node: over libxml2's 10 MB text limit, which the tree parser lifts.
    attachment = (
        b"<cac:AdditionalDocumentReference><cbc:ID>1</cbc:ID><cac:Attachment>"
        b'<cbc:EmbeddedDocumentBinaryObject mimeCode="application/pdf" filename="a.pdf">'
        + b"QUJD" * 3_000_000
        + b"</cbc:EmbeddedDocumentBinaryObject></cac:Attachment></cac:AdditionalDocumentReference>"
    )
    content = MIN_VAT.replace(b"<cac:AccountingSupplierParty>", attachment + b"<cac:AccountingSupplierParty>", 1)
    assert parse_einvoice(content)["number"] == "2018-112"


# --- concurrency ---------------------------------------------------------------------------------


def test_a_validation_in_progress_does_not_hold_up_another(monkeypatch):
    """The first thread is held inside its validation until the second has finished one; with a
    module-wide lock around validation the second would wait for the first, and the first would
    give up waiting after 30 s."""
    real_schema = ubl._schema
    inside, second_done, outcome = threading.Event(), threading.Event(), {}

    def schema_that_holds_the_first_thread(*args):
        if threading.current_thread().name == "first":
            inside.set()
            outcome["second finished meanwhile"] = second_done.wait(timeout=30)
        return real_schema(*args)

    monkeypatch.setattr(ubl, "_schema", schema_that_holds_the_first_thread)
    first = threading.Thread(target=lambda: outcome.setdefault("first", validate_ubl(MIN_VAT)[1]), name="first")
    first.start()
    assert inside.wait(timeout=30)
    assert validate_ubl(MIN_VAT)[1] == "invoice"
    second_done.set()
    first.join(timeout=60)
    assert outcome == {"second finished meanwhile": True, "first": "invoice"}


def test_each_thread_has_its_own_schema_and_no_lock_is_shared():
    assert not [name for name, value in vars(ubl).items() if isinstance(value, type(threading.Lock()))]
    seen = []
    threads = [threading.Thread(target=lambda: seen.append((ubl._schema(), ubl._schema()))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    (a1, a2), (b1, b2) = seen
    assert a1 is a2 and b1 is b2 and a1 is not b1  # one per thread, kept for the thread's next file
