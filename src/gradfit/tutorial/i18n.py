"""Korean and English for the tutorial, the demo and the playground, through gettext catalogs.

The messages are English in the code; ``locale/ko/LC_MESSAGES/gradfit.po`` is the Korean catalog,
written with the tutorial's own terms (경사 하강법, 손실 함수, 학습률, 가중치, 편향). The compiled
``gradfit.mo`` ships beside it (package data), so an install needs no build step;
``tests/test_i18n.py`` checks that it is up to date with the ``.po`` and that every message in the
code has a translation. To recompile after editing the ``.po``: ``python -m gradfit.tutorial.i18n``.
"""
from __future__ import annotations

import ast
import gettext
import os
from functools import lru_cache
from pathlib import Path
from typing import Callable

DOMAIN = "gradfit"
LOCALE_DIR = Path(__file__).with_name("locale")
LANGUAGES = ("en", "ko")


def default_lang(environ: dict | None = None) -> str:
    """``ko`` when the locale (LC_ALL, LC_MESSAGES, LANG, LANGUAGE, first set) is Korean, else ``en``."""
    env = os.environ if environ is None else environ
    for key in ("LC_ALL", "LC_MESSAGES", "LANG", "LANGUAGE"):
        value = env.get(key)
        if value:
            return "ko" if value.lower().startswith("ko") else "en"
    return "en"


def check_lang(lang: str | None) -> str:
    lang = default_lang() if lang in (None, "", "auto") else lang
    if lang not in LANGUAGES:
        raise ValueError(f"unknown language {lang!r}; choose {' or '.join(LANGUAGES)}")
    return lang


@lru_cache(maxsize=None)
def translation(lang: str) -> gettext.NullTranslations:
    """The catalog of ``lang`` (English: the messages as written)."""
    if check_lang(lang) == "en":
        return gettext.NullTranslations()
    return gettext.translation(DOMAIN, LOCALE_DIR, languages=[lang])


def translator(lang: str | None) -> Callable[[str], str]:
    """``_`` for ``lang`` (None: from the locale)."""
    return translation(check_lang(lang)).gettext


# -- catalogs: reading a .po and writing the .mo (the format of GNU msgfmt, no plural forms) ------------
def read_po(path: str | os.PathLike) -> dict[str, str]:
    """msgid -> msgstr of a .po file (entries with an empty msgstr are left out; the header is kept)."""
    entries: dict[str, str] = {}
    key = None
    msgid: list[str] = []
    msgstr: list[str] = []

    def flush():
        if msgstr is not None and (msgid or msgstr) and "".join(msgstr):
            entries["".join(msgid)] = "".join(msgstr)

    for raw in Path(path).read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("msgid "):
            if key == "msgstr":
                flush()
            msgid, msgstr, key = [ast.literal_eval(line[6:])], [], "msgid"
        elif line.startswith("msgstr "):
            msgstr, key = [ast.literal_eval(line[7:])], "msgstr"
        elif line.startswith('"'):
            (msgid if key == "msgid" else msgstr).append(ast.literal_eval(line))
    if key == "msgstr":
        flush()
    return entries


def mo_bytes(entries: dict[str, str]) -> bytes:
    """The binary catalog gettext reads (little-endian, sorted keys, no hash table)."""
    import struct
    keys = sorted(entries)
    ids = [k.encode("utf-8") for k in keys]
    strs = [entries[k].encode("utf-8") for k in keys]
    n = len(keys)
    start = 7 * 4 + 16 * n
    key_offsets, offset, blob = [], start, b""
    for s in ids:
        key_offsets.append((len(s), offset))
        blob += s + b"\0"
        offset += len(s) + 1
    val_offsets = []
    for s in strs:
        val_offsets.append((len(s), offset))
        blob += s + b"\0"
        offset += len(s) + 1
    head = struct.pack("<7I", 0x950412DE, 0, n, 7 * 4, 7 * 4 + 8 * n, 0, 0)
    table = b"".join(struct.pack("<2I", *o) for o in key_offsets) + b"".join(struct.pack("<2I", *o) for o in val_offsets)
    return head + table + blob


def compile_all() -> list[Path]:
    """Write ``gradfit.mo`` beside every ``gradfit.po``."""
    written = []
    for po in sorted(LOCALE_DIR.glob(f"*/LC_MESSAGES/{DOMAIN}.po")):
        mo = po.with_suffix(".mo")
        mo.write_bytes(mo_bytes(read_po(po)))
        written.append(mo)
    return written


if __name__ == "__main__":
    for path in compile_all():
        print(f"wrote {path}")


def N_(message: str) -> str:
    """Mark a message for the catalog where it is translated later (a table of labels)."""
    return message


def messages_in_source(root: str | os.PathLike | None = None) -> list[str]:
    """Every literal passed to ``_(...)`` or ``N_(...)`` in gradfit's source, in order of appearance."""
    root = Path(root) if root is not None else Path(__file__).resolve().parents[1]
    found: list[str] = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("_", "N_")
                    and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
                if node.args[0].value not in found:
                    found.append(node.args[0].value)
    return found
