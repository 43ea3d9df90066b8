"""Writing the results: Markdown tables for bench/RESULTS.md and the SVG bar chart of ratios.

The chart is plain SVG text written here (no plotting library): one horizontal bar per command,
its length the log2 of its ratio to the best peer of its group, so 2x slower and 2x faster are
bars of the same length on either side of the 1.0 line.
"""

import math
from xml.sax.saxutils import escape


def fmt_ms(ms):
    if ms is None:
        return "-"
    if ms < 1:
        return "%.0f µs" % (ms * 1000)
    if ms < 100:
        return "%.2f ms" % ms
    if ms < 1000:
        return "%.0f ms" % ms
    return "%.2f s" % (ms / 1000)


def fmt_kib(kib):
    if kib is None:
        return "-"
    if kib < 1024:
        return "%.0f KiB" % kib
    return "%.1f MiB" % (kib / 1024)


def fmt_kb(nbytes):
    """Sizes in kB (1000 bytes), as the size budgets are written."""
    if nbytes is None:
        return "-"
    if nbytes >= 10_000_000:
        return "%.1f MB" % (nbytes / 1e6)
    return "%.1f kB" % (nbytes / 1e3)


def fmt_ratio(r):
    if r is None:
        return "-"
    if r >= 100:
        return "%.0fx" % r
    if r >= 10:
        return "%.1fx" % r
    return "%.2fx" % r


def cell(text):
    """Escape a value for a Markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def code(text):
    text = str(text).replace("|", "\\|")
    tick = "``" if "`" in text else "`"
    return "%s%s%s" % (tick, text, tick)


def table(headers, rows):
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    for r in rows:
        out.append("| " + " | ".join(r) + " |")
    return "\n".join(out)


def time_table(cmds, best, extra_cols=()):
    """The standard table of a group of timed commands.

    extra_cols: (header, function(cmd) -> text) pairs appended before the status.
    """
    headers = ["", "command", "runs", "median", "min - max", "ratio to best peer", "peak RSS"]
    headers += [h for h, _ in extra_cols] + ["status"]
    rows = []
    for c in cmds:
        name = "**%s**" % c.label if c.dockhand else c.label
        if c.role == "context":
            name += " (context)"
        if c.samples:
            ms = c.wall_ms()
            med, rng = fmt_ms(c.median_ms()), "%s - %s" % (fmt_ms(min(ms)), fmt_ms(max(ms)))
            ratio = fmt_ratio(c.median_ms() / best.median_ms()) if best else "no peer ran"
            if c is best:
                ratio += " (best peer)"
            rss = fmt_kib(c.rss_kib())
        else:
            med = rng = ratio = rss = "-"
        row = [name, code(c.shown), str(len(c.samples)), med, rng, ratio, rss]
        row += [cell(f(c)) for _, f in extra_cols]
        row.append(cell(c.status_text()))
        rows.append(row)
    return table(headers, rows)


# --- SVG chart ---------------------------------------------------------------------------------

COLORS = {"dockhand": "#1f6feb", "peer": "#8c959f", "context": "#d0d7de", "fail": "#cf222e"}


def svg_chart(groups, title, subtitles):
    """groups: [(group title, [(label, ratio or None, role, note), ...], target ratio or None)].

    ratio None draws no bar and writes note (e.g. "FAILED ...") instead. The target is a ratio to
    the group's best peer, drawn as a red tick on the dockhand rows.
    """
    ratios = [r for _, bars, _ in groups for _, r, _, _ in bars if r]
    targets = [t for _, _, t in groups if t]
    lo = min([0.25] + ratios + targets)
    hi = max([4.0] + ratios + targets)
    lo_e = math.floor(math.log2(lo))
    hi_e = math.ceil(math.log2(hi))
    lo_e, hi_e = max(lo_e, -10), min(hi_e, 12)

    label_w, bar_w, right_w = 330, 470, 230
    width = label_w + bar_w + right_w
    row_h, group_gap = 18, 30
    top = 62 + 16 * len(subtitles)

    def x_of(r):
        e = min(max(math.log2(r), lo_e), hi_e)
        return label_w + (e - lo_e) / (hi_e - lo_e) * bar_w

    height = top + sum(group_gap + row_h * len(bars) for _, bars, _ in groups) + 50
    out = [
        '<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" '
        'font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="12">' % (width, height, width, height),
        '<rect width="100%" height="100%" fill="#ffffff"/>',
        '<text x="10" y="22" font-size="16" font-weight="bold">%s</text>' % escape(title),
    ]
    lines = list(subtitles) + ["Bars: median (or size, CPU, RSS) divided by the best peer's, log scale; left of 1x "
                               "is better. Blue: dockhand, grey: peers, red tick: target."]
    for i, line in enumerate(lines):
        out.append('<text x="10" y="%d" fill="#57606a">%s</text>' % (40 + 16 * i, escape(line)))
    axis_top = top - 8
    axis_bottom = height - 40
    step = 1 if hi_e - lo_e <= 12 else 2
    for e in range(lo_e, hi_e + 1):
        x = x_of(2.0**e)
        strong = e == 0
        out.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="%s" stroke-width="%s"/>'
                   % (x, axis_top, x, axis_bottom, "#24292f" if strong else "#eaeef2", 1.5 if strong else 1))
        if e % step == 0:
            lab = ("%gx" % 2.0**e) if e >= 0 else "1/%gx" % 2.0**-e
            out.append('<text x="%.1f" y="%d" text-anchor="middle" fill="#57606a">%s</text>'
                       % (x, axis_bottom + 16, lab))
    y = top
    for gtitle, bars, target in groups:
        y += group_gap
        out.append('<text x="10" y="%d" font-weight="bold">%s</text>' % (y - 8, escape(gtitle)))
        for label, r, role, note in bars:
            cy = y + row_h / 2
            out.append('<text x="18" y="%.1f" dominant-baseline="middle"%s>%s</text>'
                       % (cy, ' font-weight="bold"' if role == "dockhand" else "", escape(label[:46])))
            if r:
                x0, x1 = x_of(1.0), x_of(r)
                out.append('<rect x="%.1f" y="%.1f" width="%.1f" height="%d" fill="%s"/>'
                           % (min(x0, x1), y + 3, max(abs(x1 - x0), 1.5), row_h - 6, COLORS[role]))
                out.append('<text x="%d" y="%.1f" dominant-baseline="middle">%s</text>'
                           % (label_w + bar_w + 8, cy, escape(fmt_ratio(r) + (" " + note if note else ""))))
                if target and role == "dockhand":
                    tx = x_of(target)
                    out.append('<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="2"/>'
                               % (tx, y, tx, y + row_h, COLORS["fail"]))
            else:
                out.append('<text x="%.1f" y="%.1f" dominant-baseline="middle" fill="%s">%s</text>'
                           % (x_of(1.0) + 6, cy, COLORS["fail"] if role == "dockhand" else "#57606a",
                              escape(note[:60])))
            y += row_h
    out.append("</svg>")
    return "\n".join(out) + "\n"
