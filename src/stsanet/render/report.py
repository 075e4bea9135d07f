"""One self-contained HTML page per table: its markdown (title, protocol, the table with the
paper's values and the significance marks, notes) as HTML, the figures embedded as data: URIs,
and tables of links. No script, no server, no stylesheet outside the file."""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass

_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")
STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1400px; padding: 0 1em;
       color: #222; }
h1 { font-size: 1.35em; } h2 { font-size: 1.1em; margin-top: 2em; }
table { border-collapse: collapse; font-size: 0.85em; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.5em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
tbody tr:nth-child(even) { background: #fafafa; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: 0.85em; color: #555; }
.missing { color: #a33; }
"""


@dataclass
class Figure:
    heading: str
    png: bytes | None  # None: the figure could not be drawn (``caption`` says why)
    caption: str
    alt: str = ""


def _inline(text: str) -> str:
    """Escaped text with markdown links [text](href) as <a> elements."""
    out, last = [], 0
    for match in _LINK.finditer(text):
        out.append(html.escape(text[last:match.start()]))
        out.append(f'<a href="{html.escape(match.group(2))}">{html.escape(match.group(1))}</a>')
        last = match.end()
    out.append(html.escape(text[last:]))
    return "".join(out)


def split_row(line: str) -> list[str]:
    """The cells of a markdown table line ``| a | b |``."""
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def markdown_tables(text: str) -> list[tuple[list[str], list[list[str]]]]:
    """(header, rows) of each markdown table in ``text``."""
    tables, block = [], []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            block.append(line)
            continue
        if len(block) >= 2:
            tables.append((split_row(block[0]), [split_row(b) for b in block[2:]]))
        block = []
    return tables


def markdown_html(text: str) -> str:
    """The markdown the tables are written in (headings, bullets, pipe tables, paragraphs) as
    HTML."""
    out: list[str] = []
    lines = text.splitlines() + [""]
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("#"):
            level = min(len(line) - len(line.lstrip("#")), 6)
            out.append(f"<h{level}>{_inline(line[level:].strip())}</h{level}>")
        elif line.startswith("- "):
            items = []
            while i < len(lines) and lines[i].startswith("- "):
                items.append(f"<li>{_inline(lines[i][2:])}</li>")
                i += 1
            out.append("<ul>" + "".join(items) + "</ul>")
            continue
        elif line.startswith("|"):
            block = []
            while i < len(lines) and lines[i].startswith("|"):
                block.append(lines[i])
                i += 1
            header = "".join(f"<th>{_inline(c)}</th>" for c in split_row(block[0]))
            body = "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in split_row(b))
                           + "</tr>" for b in block[2:])
            out.append(f"<table><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table>")
            continue
        elif line.strip():
            paragraph = []
            while i < len(lines) and lines[i].strip() and not lines[i].startswith(("#", "- ", "|")):
                paragraph.append(lines[i].strip())
                i += 1
            out.append(f"<p>{_inline(' '.join(paragraph))}</p>")
            continue
        i += 1
    return "\n".join(out)


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _cell(value) -> str:
    """A table cell: text, or (text, href) for a link."""
    if isinstance(value, tuple):
        text, href = value
        return f'<a href="{html.escape(href)}">{html.escape(str(text))}</a>'
    return html.escape("" if value is None else str(value))


def report_page(title: str, markdown: str, figures: list[Figure],
                tables: list[tuple[str, list[str], list[list]]] = (),
                footer: list[tuple[str, str]] = ()) -> str:
    """The page: the markdown, each figure under its heading, then each (heading, columns,
    rows) table (cells: text or (text, href)), then the footer links."""
    parts = [markdown_html(markdown)]
    for figure in figures:
        parts.append(f"<h2>{html.escape(figure.heading)}</h2>")
        if figure.png is None:
            parts.append(f'<p class="missing">{html.escape(figure.caption)}</p>')
            continue
        parts.append(f'<figure><img src="{data_uri(figure.png)}" '
                     f'alt="{html.escape(figure.alt or figure.heading)}">'
                     f"<figcaption>{html.escape(figure.caption)}</figcaption></figure>")
    for heading, columns, rows in tables:
        parts.append(f"<h2>{html.escape(heading)}</h2>")
        head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
        body = "".join("<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in row) + "</tr>"
                       for row in rows)
        parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
    if footer:
        parts.append("<p>" + " · ".join(_cell(link) for link in footer) + "</p>")
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
            + "\n".join(parts) + "\n</body>\n</html>\n")
