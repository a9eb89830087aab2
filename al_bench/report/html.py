"""``report/index.html``: the whole report as one self-contained page (no network, no external file).

Figures are embedded as base64 PNG data URIs, tables are plain HTML that a dozen lines of inline JavaScript
sort on a click on any header (numbers by value, text alphabetically, empty cells last). The page is built
from small escaped fragments; nothing here computes a statistic.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from al_bench.report.protocol import Protocol
from al_bench.report.tables import Block

if TYPE_CHECKING:
    from al_bench.report.writer import ReportData

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto; max-width: 1500px;
       padding: 0 24px 48px; color: #1b1b1b; line-height: 1.45; }
h1 { margin-top: 24px; } h2 { border-bottom: 2px solid #d0d7e2; padding-bottom: 4px; margin-top: 40px; }
nav { font-size: 14px; } nav a { margin-right: 12px; color: #3a4a8c; }
figure { margin: 12px 0 24px; } figure img { max-width: 100%; height: auto; border: 1px solid #e3e3e3; }
figcaption { font-size: 13px; color: #555; max-width: 1100px; }
table { border-collapse: collapse; margin: 8px 0 20px; font-size: 13px; }
th, td { border: 1px solid #c9d1de; padding: 3px 8px; text-align: right; white-space: nowrap; }
th { background: #e8eef7; cursor: pointer; user-select: none; position: sticky; top: 0; }
th[data-dir="asc"]::after { content: " \\25B2"; } th[data-dir="desc"]::after { content: " \\25BC"; }
td:first-child, th:first-child, td.l { text-align: left; } td.msg { text-align: left; white-space: normal; }
tbody tr:nth-child(even) { background: #f6f8fb; } tfoot td { font-weight: 600; background: #eef1f6; }
td.flag { color: #8a5a00; } .note { color: #555; font-size: 14px; } ul.claims li { margin-bottom: 6px; }
.scroll { overflow-x: auto; }
"""

SCRIPT = """
function sortKey(cell) {
  const text = (cell.dataset.v !== undefined ? cell.dataset.v : cell.textContent).trim();
  const n = parseFloat(text.replace(/^\\+/, ""));
  return isNaN(n) ? text.toLowerCase() : n;
}
document.querySelectorAll("table.sortable").forEach(function (table) {
  table.querySelectorAll("thead th").forEach(function (th, i) {
    th.addEventListener("click", function () {
      const asc = th.dataset.dir !== "asc";
      table.querySelectorAll("thead th").forEach(function (h) { delete h.dataset.dir; });
      th.dataset.dir = asc ? "asc" : "desc";
      const body = table.tBodies[0];
      const rows = Array.from(body.rows);
      rows.sort(function (a, b) {
        const x = sortKey(a.cells[i]), y = sortKey(b.cells[i]);
        if (typeof x !== typeof y) { return typeof x === "number" ? -1 : 1; }
        return (x < y ? -1 : x > y ? 1 : 0) * (asc ? 1 : -1);
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
"""


@dataclass
class Cell:
    """One table cell: its text, an optional sort value, bold, and a CSS class."""

    text: str
    value: float | str | None = None
    bold: bool = False
    css: str = ""


@dataclass
class Table:
    """A sortable table: header texts, body rows of cells, footer rows (not sorted), a caption."""

    header: list[str]
    rows: list[list[Cell]] = field(default_factory=list)
    footer: list[list[Cell]] = field(default_factory=list)
    caption: str = ""


@dataclass
class Section:
    """One ``<h2>`` section: an anchor id, a heading and its HTML body (already escaped)."""

    anchor: str
    title: str
    body: str


def figure(path: str | Path, alt: str, caption: str = "") -> str:
    """``<figure>`` with the PNG at ``path`` embedded as a data URI and an escaped caption."""
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
    return f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">{cap}</figure>'


def table(t: Table) -> str:
    """A ``<table class="sortable">`` in a horizontally scrolling box."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in t.header)
    body = "".join(f"<tr>{''.join(_cell(c) for c in row)}</tr>" for row in t.rows)
    foot = "".join(f"<tr>{''.join(_cell(c) for c in row)}</tr>" for row in t.footer)
    caption = f"<caption class='note'>{html.escape(t.caption)}</caption>" if t.caption else ""
    return (
        f'<div class="scroll"><table class="sortable">{caption}<thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody>{f'<tfoot>{foot}</tfoot>' if foot else ''}</table></div>"
    )


def block_table(block: Block, footer_rows: int = 0) -> Table:
    """A ``tables.Block`` (Markdown / LaTeX cell model) as a Table; its last ``footer_rows`` rows unsorted."""
    rows = [
        [Cell(text, bold=bold, css="l" if i == 0 else "") for i, (text, bold) in enumerate(zip(cells, flags))]
        for cells, flags in zip(block.rows, block.bold)
    ]
    split = len(rows) - footer_rows
    return Table(header=list(block.header), rows=rows[:split], footer=rows[split:])


def frame_table(frame: pd.DataFrame, text_columns: tuple[str, ...] = (), caption: str = "") -> Table:
    """A DataFrame as a Table: numbers keep their value for sorting; ``text_columns`` wrap (messages)."""
    rows = []
    for record in frame.itertuples(index=False):
        cells = []
        for column, value in zip(frame.columns, record):
            css = "msg" if column in text_columns else ""
            cells.append(Cell(_text(value), value=_value(value), css=css))
        rows.append(cells)
    return Table(header=[str(c) for c in frame.columns], rows=rows, caption=caption)


def bullet_list(lines: list[str], css: str = "") -> str:
    """``<ul>`` of escaped lines."""
    items = "".join(f"<li>{html.escape(line)}</li>" for line in lines)
    return f'<ul class="{css}">{items}</ul>' if css else f"<ul>{items}</ul>"


def markdown_bullets(text: str) -> str:
    """The report's definition text (``- `` bullets with indented continuation lines) as an escaped list."""
    items: list[str] = []
    for line in text.splitlines():
        if line.startswith("- "):
            items.append(line[2:].strip())
        elif items and line.strip():
            items[-1] += " " + line.strip()
    return bullet_list(items)


def protocol_html(protocols: list[Protocol]) -> str:
    """Per setting: the main choices, what varies between its runs, and the strategy options that differ."""
    parts = []
    for p in protocols:
        seeds = ", ".join(map(str, p.seeds))
        rows = [[Cell(label, css="l"), Cell(value, css="l")] for label, value in p.main]
        rows.append([Cell("seeds", css="l"), Cell(f"{seeds} ({p.n_runs} runs)", css="l")])
        main = table(Table(header=["choice", "value"], rows=rows))
        notes = []
        if p.missing_configs:
            notes.append(f"{p.missing_configs} run(s) have no readable config.yaml: not described above.")
        if p.varies:
            listed = "; ".join(f"{k}: {' | '.join(v)}" for k, v in p.varies.items())
            notes.append(f"Differs between the runs of this setting (a mixed sweep?): {listed}.")
        body = f"<h3>{html.escape(p.label)}</h3>{main}"
        body += "".join(f"<p class='note'>{html.escape(n)}</p>" for n in notes)
        if p.strategy_options:
            options = [[Cell(s, css="l"), Cell(o, css="msg")] for s, o in p.strategy_options.items()]
            body += (
                "<p class='note'>Strategy options that differ from configs/strategy/&lt;name&gt;.yaml:</p>"
            )
            body += table(Table(header=["strategy", "options"], rows=options))
        else:
            body += "<p class='note'>Every strategy ran with its shipped options (configs/strategy/).</p>"
        parts.append(body)
    return "".join(parts)


def page(title: str, intro: str, sections: list[Section]) -> str:
    """The whole document: head with inline CSS, a table of contents, the sections, the sorting script."""
    nav = "".join(f'<a href="#{s.anchor}">{html.escape(s.title)}</a>' for s in sections)
    body = "".join(
        f'<section id="{s.anchor}"><h2>{html.escape(s.title)}</h2>{s.body}</section>' for s in sections
    )
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{STYLE}</style></head>'
        f"<body><h1>{html.escape(title)}</h1>{intro}<nav>{nav}</nav>{body}<script>{SCRIPT}</script></body></html>\n"
    )


def _cell(c: Cell) -> str:
    attrs = ""
    if c.value is not None:
        attrs += f' data-v="{html.escape(str(c.value))}"'
    if c.css:
        attrs += f' class="{c.css}"'
    text = html.escape(c.text)
    return f"<td{attrs}>{f'<b>{text}</b>' if c.bold else text}</td>"


def _text(value: object) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)) or value is pd.NA:
        return "–"
    if isinstance(value, (float, np.floating)):
        return f"{value:.4g}"
    return str(value)


def _value(value: object) -> float | None:
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, (int, float, np.integer, np.floating)) and np.isfinite(value):
        return float(value)
    return None


def report_page(data: ReportData) -> str:
    """index.html of a report: summary claims, every figure, sortable tables, protocols, unfinished runs."""
    from al_bench.report.families import family_of
    from al_bench.report.markdown import definitions, overview, validation_note
    from al_bench.report.tables import aubc_blocks, penalty_block, rank_block, summary_blocks

    o = data.options
    out = data.out
    intro = f"<p class='note'>{html.escape(overview(data).replace('`', ''))}</p>"
    intro += f"<p class='note'>{html.escape(validation_note(data.curves, o.count_validation))}</p>"
    sections = [Section("summary", "Summary", bullet_list(data.claims, css="claims"))]
    for name, (title, caption) in data.figures.items():
        if name == "penalty_matrix.png":
            continue
        anchor = name.removesuffix(".png").replace("_", "-")
        sections.append(Section(anchor, title, figure(out / name, title, caption)))
        if name == "aubc_ranking.png":
            families = {s: family_of(s) for s in data.test.avg_ranks.index}
            ranks = rank_block(data.test.avg_ranks, families, data.test.n_blocks, data.test.blocks)
            body = (
                table(block_table(ranks))
                if ranks.rows
                else "<p class='note'>No complete curve: no ranks.</p>"
            )
            for block in aubc_blocks(data.aubc, data.scale, o.baseline, o.level):
                body += f"<h3>AUBC: {html.escape(block.title)}</h3>{table(block_table(block))}"
            sections.append(Section("ranking", "Ranking tables", body))
    if not data.test.applicable:
        note = f"No critical-difference diagram: {data.test.reason}."
        sections.append(
            Section("critical-difference", "Critical-difference diagram", f"<p>{html.escape(note)}</p>")
        )
    results = "".join(
        f"<h3>{html.escape(b.title)}</h3>{table(block_table(b))}"
        for b in summary_blocks(data.summary, o.max_checkpoints)
    )
    sections.append(Section("results", "Results per setting", results))
    penalty = figure(out / "penalty_matrix.png", "penalty matrix", data.figures["penalty_matrix.png"][1])
    penalty += table(block_table(penalty_block(data.matrix, data.col_means), footer_rows=1))
    sections.append(Section("penalty", "Pairwise penalty matrix", penalty))
    sections.append(Section("protocol", "Protocol per setting", protocol_html(data.protocols)))
    sections.append(Section("runs", "Runs not finished", runs_html(data.status)))
    sections.append(Section("definitions", "Definitions", markdown_bullets(definitions(data))))
    return page("Active-learning report", intro, sections)


def runs_html(status: pd.DataFrame) -> str:
    """The runs that did not finish (failed, running, unknown) with their cycles and message."""
    unfinished = status[status["state"] != "finished"]
    counts = ", ".join(f"{n} {s}" for s, n in status["state"].value_counts().sort_index().items())
    head = f"<p class='note'>{len(status)} runs: {html.escape(counts)}.</p>"
    if unfinished.empty:
        return head
    rows = []
    for _, row in unfinished.sort_values(["state", "run_dir"]).iterrows():
        done = "?" if pd.isna(row["cycles_done"]) else str(row["cycles_done"])
        total = "?" if pd.isna(row["cycles_total"]) else str(row["cycles_total"])
        rows.append(
            [
                Cell(str(row["run_dir"]), css="l"),
                Cell(str(row["state"]), css="l"),
                Cell(f"{done}/{total}", value=None if done == "?" else float(done)),
                Cell(str(row["message"]), css="msg"),
            ]
        )
    return head + table(Table(header=["run", "state", "cycles done", "message"], rows=rows))
