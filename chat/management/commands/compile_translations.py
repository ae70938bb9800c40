"""`manage.py compile_translations`: every locale/*/LC_MESSAGES/*.po to its .mo, in pure
Python, so that setup needs no gettext binaries (Django's compilemessages calls msgfmt).
The app also runs it at start for catalogs missing or older than their .po."""

import ast
import logging
import os
import struct
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

MO_MAGIC = 0x950412DE
log = logging.getLogger(__name__)


def parse_po(text: str) -> dict[str, str]:
    """The translated entries of a .po file as .mo keys and values (fuzzy ones left out)."""
    catalog: dict[str, str] = {}
    entry: dict[str, list[str]] = {}
    fuzzy = False
    field = None

    def flush() -> None:
        nonlocal entry, fuzzy
        if "msgid" in entry and not fuzzy:
            key, value = _entry_key_value(entry)
            if value.replace("\x00", "") or key == "":
                catalog[key] = value
        entry, fuzzy = {}, False

    for line_no, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            flush()
            field = None
        elif line.startswith("#,"):
            if entry:
                flush()
            fuzzy = "fuzzy" in line
        elif line.startswith("#"):
            continue
        elif line.startswith('"'):
            if field is None:
                raise ValueError(f"line {line_no}: a string outside any field")
            entry[field].append(_unquote(line, line_no))
        else:
            keyword, _, rest = line.partition(" ")
            has_msgstr = any(name.startswith("msgstr") for name in entry)
            if keyword in ("msgctxt", "msgid") and has_msgstr:
                flush()
            field = keyword
            entry[field] = [_unquote(rest.strip(), line_no)]
    flush()
    return catalog


def _unquote(token: str, line_no: int) -> str:
    if not (token.startswith('"') and token.endswith('"')):
        raise ValueError(f"line {line_no}: expected a quoted string, got {token!r}")
    return ast.literal_eval(token)


def _entry_key_value(entry: dict[str, list[str]]) -> tuple[str, str]:
    text = {name: "".join(parts) for name, parts in entry.items()}
    key = text["msgid"]
    if "msgid_plural" in text:
        key += "\x00" + text["msgid_plural"]
        forms = sorted(name for name in text if name.startswith("msgstr["))
        value = "\x00".join(text[name] for name in forms)
    else:
        value = text.get("msgstr", "")
    if "msgctxt" in text:
        key = text["msgctxt"] + "\x04" + key
    return key, value


def build_mo(catalog: dict[str, str]) -> bytes:
    """The GNU .mo bytes for `catalog` (keys sorted, no hash table), as msgfmt writes."""
    keys = sorted(catalog)
    ids = [key.encode() for key in keys]
    strs = [catalog[key].encode() for key in keys]
    header_size = 7 * 4
    table_size = len(keys) * 8
    ids_start = header_size + 2 * table_size
    id_table, str_table, blob = [], [], b""
    for data in ids:
        id_table += [len(data), ids_start + len(blob)]
        blob += data + b"\x00"
    for data in strs:
        str_table += [len(data), ids_start + len(blob)]
        blob += data + b"\x00"
    header = struct.pack(
        "<7I", MO_MAGIC, 0, len(keys), header_size, header_size + table_size, 0, 0
    )
    tables = struct.pack(f"<{len(id_table)}I", *id_table) + struct.pack(
        f"<{len(str_table)}I", *str_table
    )
    return header + tables + blob


def po_files() -> list[Path]:
    roots = [Path(p) for p in settings.LOCALE_PATHS]
    return sorted(po for root in roots for po in root.glob("*/LC_MESSAGES/*.po"))


def is_stale(po: Path) -> bool:
    """The .mo beside `po` is missing or older than it (a stat of each, no parsing)."""
    mo = po.with_suffix(".mo")
    return not mo.exists() or mo.stat().st_mtime < po.stat().st_mtime


def compile_po(po: Path) -> int:
    """Write the .mo of `po` (atomically: processes starting together may race);
    returns the number of messages. Raises ValueError for a malformed .po."""
    catalog = parse_po(po.read_text(encoding="utf-8"))
    mo = po.with_suffix(".mo")
    partial = mo.with_name(f".{mo.name}.{os.getpid()}")
    try:
        partial.write_bytes(build_mo(catalog))
        partial.replace(mo)
    finally:
        partial.unlink(missing_ok=True)
    return len(catalog) - 1


def compile_stale_catalogs() -> None:
    """At start: compile what `make setup` would have, so that every way of starting
    the app (daphne, runserver, a fresh clone) serves its translations."""
    for po in po_files():
        if not is_stale(po):
            continue
        try:
            count = compile_po(po)
        except (OSError, ValueError) as exc:  # a read-only install: served in English
            log.warning("could not compile %s: %s", po, exc)
        else:
            log.info("compiled %s (%s messages)", po, count)


class Command(BaseCommand):
    help = "Compile locale/*/LC_MESSAGES/*.po files to .mo without gettext tools."

    def handle(self, *args, **options):
        for po in po_files():
            try:
                count = compile_po(po)
            except ValueError as exc:
                raise CommandError(f"{po}: {exc}") from exc
            self.stdout.write(f"compiled {po} ({count} messages)")
