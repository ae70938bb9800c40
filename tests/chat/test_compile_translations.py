"""Catalogs compiled at start: a missing or stale .mo is written, a fresh one is left."""

import os

import pytest

from chat.management.commands.compile_translations import compile_stale_catalogs

PO = (
    'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=UTF-8\\n"\n\n'
    'msgid "Send"\nmsgstr "Envoyer"\n'
)


@pytest.fixture
def po(settings, tmp_path):
    po = tmp_path / "fr" / "LC_MESSAGES" / "django.po"
    po.parent.mkdir(parents=True)
    po.write_text(PO, encoding="utf-8")
    settings.LOCALE_PATHS = [tmp_path]
    return po


def test_a_missing_catalog_is_compiled(po):
    """No .mo beside the .po (a fresh clone): it is written."""
    compile_stale_catalogs()
    assert b"Envoyer" in po.with_suffix(".mo").read_bytes()


def test_a_catalog_older_than_its_po_is_compiled_again(po):
    """The .po changed after the last compile: the .mo follows it."""
    mo = po.with_suffix(".mo")
    mo.write_bytes(b"old")
    os.utime(mo, (1, 1))
    compile_stale_catalogs()
    assert b"Envoyer" in mo.read_bytes()


def test_a_fresh_catalog_is_left_alone(po):
    """A .mo newer than its .po is not rewritten (the start stays cheap)."""
    mo = po.with_suffix(".mo")
    mo.write_bytes(b"kept")
    compile_stale_catalogs()
    assert mo.read_bytes() == b"kept"


def test_an_unwritable_catalog_is_not_fatal(po, caplog):
    """Where the .mo cannot be written the app still starts, and the log says why."""
    mo = po.with_suffix(".mo")
    mo.mkdir()  # unwritable as a file, even for root
    os.utime(mo, (1, 1))
    compile_stale_catalogs()
    assert "could not compile" in caplog.text
    assert sorted(p.name for p in po.parent.iterdir()) == ["django.mo", "django.po"]
