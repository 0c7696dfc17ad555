"""Read a report page back for the tests: its tables (caption, header, cells) and its text.

A cell is ``(text, note)``: the value and the small line under it (an interval, a mark).
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser


@dataclass
class PageTable:
    caption: str = ""
    header: list[str] = field(default_factory=list)
    rows: list[list[tuple[str, str]]] = field(default_factory=list)

    def column(self, name: str) -> list[str]:
        i = self.header.index(name)
        return [row[i][0] for row in self.rows]

    def row(self, first: str) -> dict[str, tuple[str, str]]:
        """The row whose first cell is ``first``, by column name."""
        (row,) = [r for r in self.rows if r[0][0] == first]
        return dict(zip(self.header, row, strict=False))


class _Parser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tables: list[PageTable] = []
        self._cell: list[str] | None = None
        self._note: list[str] | None = None
        self._in_caption = False
        self._row: list[tuple[str, str]] | None = None
        self._header = False
        self._in_note = False

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append(PageTable())
        elif tag == "caption":
            self._in_caption = True
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell, self._note, self._header = [], [], tag == "th"
        elif tag == "div" and ("class", "sub") in attrs and self._cell is not None:
            self._in_note = True

    def handle_endtag(self, tag):
        if tag == "caption":
            self._in_caption = False
        elif tag == "div" and self._in_note:
            self._in_note = False
        elif tag in ("td", "th") and self._cell is not None:
            cell = (" ".join("".join(self._cell).split()), " ".join("".join(self._note).split()))
            self._row.append(cell)
            self._cell = None
        elif tag == "tr" and self._row is not None:
            table = self.tables[-1]
            if self._header and not table.header:
                table.header = [c[0] for c in self._row]
            else:
                table.rows.append(self._row)
            self._row = None

    def handle_data(self, data):
        if self._in_caption:
            self.tables[-1].caption += data
        elif self._cell is not None:
            (self._note if self._in_note else self._cell).append(data)


def tables(page: str) -> list[PageTable]:
    parser = _Parser()
    parser.feed(page)
    for t in parser.tables:
        t.caption = " ".join(t.caption.split())
    return parser.tables


def table(page: str, caption_start: str, nth: int = 0) -> PageTable:
    """The ``nth`` table whose caption starts with ``caption_start``."""
    found = [t for t in tables(page) if t.caption.startswith(caption_start)]
    return found[nth]


def text(page: str) -> str:
    """The page's visible text, tags removed and whitespace collapsed."""
    body = re.sub(r"<(style|script)[^>]*>.*?</\1>", " ", page, flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split())
