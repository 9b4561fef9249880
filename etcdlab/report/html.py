"""Turn the report's Markdown into one self-contained HTML page that reads on a phone.

The page is the same content as ``REPORT.md``: markdown-it-py renders it (CommonMark plus
tables; raw HTML in the Markdown is escaped, since result strings such as error messages
end up in it). On top of the plain rendering:

- every heading gets an ``id`` (GitHub's slugs, so ``#q1-…`` links work in both files) and
  a table of contents of the h2/h3 headings follows the summary section;
- every image found in the report's folder is embedded as a ``data:`` URI, so the file can
  be mailed or moved alone; a missing image keeps its reference (the report tests catch it);
- a small inline stylesheet (no web fonts, no external resources) keeps the text within
  the screen and lets wide tables scroll sideways in their own box;
- every question's section folds (``<details>``, its heading the summary line), and the
  evidence table after a numbered list of findings (the paragraph "*Evidence:*" and its
  table, rows numbered like the items) becomes one fold under each item with that item's
  rows, so the page opens on the summary and the reader unfolds what they want.
"""

from __future__ import annotations

import base64
import html
import mimetypes
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from markdown_it import MarkdownIt
from markdown_it.token import Token

STYLE = """\
body{margin:0 auto;max-width:76rem;padding:0 1rem 3rem;color:#1d1d1f;background:#fff;
font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;
overflow-wrap:break-word}
h1{font-size:1.6rem;line-height:1.25}h2{font-size:1.35rem;margin-top:2.2rem;
border-bottom:1px solid #ddd}h3{font-size:1.12rem}h4{font-size:1rem}
img{max-width:100%;height:auto}
.table-scroll{overflow-x:auto;margin:1rem 0}
table{border-collapse:collapse;font-size:.92rem}
th,td{border:1px solid #ccc;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#f3f3f3}
code{font-size:.9em;background:#f3f3f3;padding:0 .15em;overflow-wrap:anywhere}
pre{overflow-x:auto;background:#f3f3f3;padding:.6rem}pre code{padding:0}
blockquote{margin:1rem 0;padding:.4rem 1rem;border-left:4px solid #d4a017;background:#fdf8e6}
nav.toc{margin:1.5rem 0;padding:.2rem 1rem;background:#f7f7f7;border:1px solid #e2e2e2}
nav.toc ul{padding-left:1.2rem}nav.toc li{margin:.2rem 0}
nav.toc .sub{font-size:.9rem;color:#555}
details.section{border-bottom:1px solid #ddd}details.section>summary{cursor:pointer}
details.section>summary>h2{display:inline;border:0;margin:0}
details.section>summary{margin-top:1.2rem;padding:.3rem 0;font-size:1.35rem}
details.evidence>summary{cursor:pointer;color:#555;font-size:.9rem}
.summary-table table{font-size:.78rem;line-height:1.3}
.summary-table th,.summary-table td{padding:.15rem .35rem}
@media (max-width:36rem){body{padding:0 .6rem 2rem}table{font-size:.8rem}
th,td{padding:.25rem .3rem}blockquote{padding:.3rem .7rem}}
"""


@dataclass(frozen=True)
class Heading:
    """One h2/h3 heading of the page, as the table of contents lists it."""

    level: int
    anchor: str
    html: str


def slug(text: str, taken: set[str]) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens,
    ``-1``, ``-2``… for repeats. ``taken`` collects the anchors already given out."""
    base = re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")
    anchor, count = base, 0
    while anchor in taken:
        count += 1
        anchor = f"{base}-{count}"
    taken.add(anchor)
    return anchor


def _parser() -> MarkdownIt:
    """CommonMark with GitHub's tables; raw HTML escaped; tables wrapped to scroll."""
    parser = MarkdownIt("commonmark", {"html": False}).enable("table")
    parser.add_render_rule("table_open", lambda *_: '<div class="table-scroll">\n<table>\n')
    parser.add_render_rule("table_close", lambda *_: "</table>\n</div>\n")
    return parser


def _plain(inline: Token) -> str:
    """The text of an inline token without its Markdown (code spans keep their text)."""
    return "".join(child.content for child in inline.children or ()
                   if child.type in ("text", "code_inline"))


def _data_uri(path: Path) -> str:
    """The file as a ``data:`` URI, its type guessed from its name."""
    mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def _embed_images(tokens: Sequence[Token], image_dir: Path) -> None:
    """Replace each image's ``src`` by its file's data URI; a file not found keeps its name.

    Only plain relative names inside ``image_dir`` are read: the Markdown is ours, but an
    absolute path or ``..`` would make the page depend on where it was rendered.
    """
    folder = image_dir.resolve()
    for token in tokens:
        for child in token.children or ():
            if child.type != "image":
                continue
            reference = str(child.attrGet("src") or "")
            path = (folder / reference).resolve()
            if path.is_relative_to(folder) and path.is_file():
                child.attrSet("src", _data_uri(path))


def _anchor_headings(parser: MarkdownIt, tokens: Sequence[Token]) -> list[Heading]:
    """Give every heading an ``id``; return the h2/h3 ones for the table of contents."""
    taken: set[str] = set()
    listed = []
    for heading, inline in zip(tokens, tokens[1:], strict=False):
        if heading.type != "heading_open":
            continue
        anchor = slug(_plain(inline), taken)
        heading.attrSet("id", anchor)
        level = int(heading.tag[1])
        if level in (2, 3):
            text = parser.renderer.renderInline(inline.children or [], parser.options, {})
            listed.append(Heading(level, anchor, text))
    return listed


def _toc(headings: Sequence[Heading]) -> str:
    """A list of the h2 headings, each with its h3 headings on one line beneath it."""
    items = []
    for index, heading in enumerate(headings):
        if heading.level != 2:
            continue
        subs = []
        for sub in headings[index + 1:]:
            if sub.level == 2:
                break
            subs.append(f'<a href="#{sub.anchor}">{sub.html}</a>')
        line = f'<li><a href="#{heading.anchor}">{heading.html}</a>'
        if subs:
            line += f'<br><span class="sub">{" · ".join(subs)}</span>'
        items.append(line + "</li>")
    return ('<nav class="toc" aria-label="Contents">\n<p><strong>Contents</strong></p>\n<ul>\n'
            + "\n".join(items) + "\n</ul>\n</nav>\n")


def _toc_position(tokens: Sequence[Token], toc_after: str | None) -> int | None:
    """The index of the h2 heading the table of contents goes before: the one after the
    section ``toc_after`` when there is one, else the first h2 (None: no h2 at all)."""
    starts = [i for i, token in enumerate(tokens)
              if token.type == "heading_open" and token.tag == "h2"]
    if not starts:
        return None
    for number, index in enumerate(starts):
        if tokens[index].attrGet("id") == toc_after:
            return starts[number + 1] if number + 1 < len(starts) else len(tokens)
    return starts[0]


_EVIDENCE = re.compile(
    r'<p><em>Evidence:</em></p>\n(<div class="table-scroll">\n<table>.*?</table>\n</div>\n)',
    re.S)
# A numbered list of findings and the evidence table after it.
_FINDINGS = re.compile(
    r'<ol( start="\d+")?>\n((?:(?!</?ol[ >]).)*)</ol>\n<p><em>Evidence:</em></p>\n'
    r'<div class="table-scroll">\n<table>\n(<thead>.*?</thead>)\n<tbody>\n(.*?)</tbody>\n'
    r'</table>\n</div>\n', re.S)
_ROW = re.compile(r"<tr>\n<td>(.*?)</td>\n(.*?)</tr>\n", re.S)
_ITEM = re.compile(r"<li>(.*?)</li>\n", re.S)
_SECTION = re.compile(r'(?=<h2 id="q\d+-)')


def _evidence_under_items(match: re.Match[str]) -> str:
    """One list of findings with its evidence table: each finding's rows (numbered like its
    item; a list that numbers on from an earlier one starts there) folded into a
    ``<details>`` at the end of that item; the table itself goes."""
    start, items = match.group(1) or "", match.group(2)
    head, rows = match.group(3), match.group(4)
    first_item = int(start.split('"')[1]) if start else 1
    head = head.replace("<th>Finding</th>\n", "")
    groups: dict[int, list[str]] = {}
    number = 0
    for row in _ROW.finditer(rows):
        first, rest = row.group(1), row.group(2)
        found = re.match(r"(\d+)\. ", first)
        if found:
            number = int(found.group(1))
        groups.setdefault(number, []).append(f"<tr>\n{rest}</tr>\n")
    out = []
    for index, item in enumerate(_ITEM.finditer(items), start=first_item):
        text = item.group(1)
        if index in groups:
            text += ('\n<details class="evidence"><summary>evidence</summary>\n'
                     f'<div class="table-scroll">\n<table>\n{head}\n<tbody>\n'
                     + "".join(groups[index]) + "</tbody>\n</table>\n</div>\n</details>\n")
        out.append(f"<li>{text}</li>\n")
    return f"<ol{start}>\n" + "".join(out) + "</ol>\n"


def _fold(body: str) -> str:
    """Fold every evidence table, then every question's section (from its h2 to the next h2
    or the end), into ``<details>``; the summary's table gets its own compact style."""
    body = _FINDINGS.sub(_evidence_under_items, body)
    body = _EVIDENCE.sub(lambda m: '<details class="evidence"><summary>Evidence: the figures '
                                   f"behind these findings</summary>\n{m.group(1)}</details>\n",
                         body)
    start = body.find('<h2 id="summary"')
    table = body.find('<div class="table-scroll">', start) if start != -1 else -1
    following = body.find("<h2 ", start + 1) if start != -1 else -1
    if table != -1 and (following == -1 or table < following):
        body = (body[:table] + '<div class="table-scroll summary-table">'
                + body[table + len('<div class="table-scroll">'):])
    pieces = _SECTION.split(body)
    folded = [pieces[0]]
    for piece in pieces[1:]:
        end = piece.find("<h2 ", 1)
        end = len(piece) if end == -1 else end
        nav = piece.find('<nav class="toc"', 1)
        if nav != -1 and nav < end:
            end = nav
        head_end = piece.index("</h2>") + len("</h2>")
        folded.append(f'<details class="section"><summary>{piece[:head_end]}</summary>\n'
                      f"{piece[head_end:end]}</details>\n{piece[end:]}")
    return "".join(folded)


def markdown_to_html(markdown: str, image_dir: Path, toc_after: str | None = "summary") -> str:
    """The Markdown report as one HTML page, its images read from ``image_dir`` and embedded.

    The table of contents is placed after the section whose heading's anchor is
    ``toc_after`` (the report's one-screen summary stays first), or before the first h2.
    The page title is the first h1's text.
    """
    parser = _parser()
    tokens = parser.parse(markdown)
    _embed_images(tokens, image_dir)
    headings = _anchor_headings(parser, tokens)
    title = next((_plain(inline) for heading, inline in zip(tokens, tokens[1:], strict=False)
                  if heading.type == "heading_open" and heading.tag == "h1"), "Report")
    position = _toc_position(tokens, toc_after)
    if position is None:
        body = parser.renderer.render(tokens, parser.options, {})
    else:
        body = (parser.renderer.render(tokens[:position], parser.options, {}) + _toc(headings)
                + parser.renderer.render(tokens[position:], parser.options, {}))
    body = _fold(body)
    return ('<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{html.escape(title)}</title>\n<style>\n{STYLE}</style>\n</head>\n"
            f"<body>\n{body}</body>\n</html>\n")
