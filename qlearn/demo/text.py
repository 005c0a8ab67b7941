"""Plain-text output of the demonstration: section headings and aligned tables.

ASCII only, so that any terminal (and a Windows code page) prints it.
"""
__all__ = ["heading", "format_table", "html_table"]

WIDTH = 78


def heading(number, title):
    """A section heading: a blank line, ``number  title`` and a rule under it.

    >>> from qlearn.demo.text import heading
    >>> print(heading(1, "The affine map"))  # doctest: +NORMALIZE_WHITESPACE
    <BLANKLINE>
    1  The affine map
    -----------------
    """
    text = f"{number}  {title}" if number is not None else title
    return f"\n{text}\n{'-' * min(len(text), WIDTH)}"


def _is_number(cell):
    s = str(cell).strip().rstrip("%x*").replace(",", "")
    if s in ("", "-", "n/a"):
        return True
    try:
        float(s.lstrip("+~*"))
        return True
    except ValueError:
        return False


def format_table(header, rows, indent=2):
    """``rows`` (lists of cells) under ``header``, columns aligned: text left, numbers
    right (a column is numeric when all its body cells are).

    >>> from qlearn.demo.text import format_table
    >>> print(format_table(["model", "accuracy"], [["fp32", "97.5"], ["int8", "97.2"]],
    ...                    indent=0))
    model  accuracy
    -----  --------
    fp32       97.5
    int8       97.2
    """
    cells = [[str(c) for c in header]] + [[str(c) for c in r] for r in rows]
    ncol = len(header)
    if any(len(r) != ncol for r in cells):
        raise ValueError(f"every row must have {ncol} cells (as `header`), got "
                         f"{sorted({len(r) for r in cells})}")
    widths = [max(len(r[i]) for r in cells) for i in range(ncol)]
    numeric = [i > 0 and all(_is_number(r[i]) for r in cells[1:]) for i in range(ncol)]
    pad = " " * indent

    def line(r):
        return pad + "  ".join(c.rjust(w) if num else c.ljust(w)
                               for c, w, num in zip(r, widths, numeric)).rstrip()

    rule = pad + "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule] + [line(r) for r in cells[1:]])


def html_table(header, rows):
    """The same table as HTML (cells escaped; numeric columns right-aligned).

    >>> from qlearn.demo.text import html_table
    >>> print(html_table(["a", "b"], [["x<y", "1"]]))
    <table>
    <tr><th>a</th><th>b</th></tr>
    <tr><td>x&lt;y</td><td class="num">1</td></tr>
    </table>
    """
    from html import escape
    body = [[str(c) for c in r] for r in rows]
    numeric = [i > 0 and all(_is_number(r[i]) for r in body) for i in range(len(header))]
    out = ["<table>", "<tr>" + "".join(f"<th>{escape(str(h))}</th>" for h in header) + "</tr>"]
    for r in body:
        out.append("<tr>" + "".join(
            f'<td class="num">{escape(c)}</td>' if num else f"<td>{escape(c)}</td>"
            for c, num in zip(r, numeric)) + "</tr>")
    out.append("</table>")
    return "\n".join(out)
