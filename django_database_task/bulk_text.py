"""The rows of ``bulk_enqueue`` as the dialects in ``sql`` send them: cut
into statements of a bounded size, or written in PostgreSQL's COPY text
format. Rows hold text only (an id, arguments as JSON)."""

from collections.abc import Iterator, Sequence
from datetime import datetime

# Characters of values per multi-row INSERT: at most 4 bytes each once
# encoded and escaped, so a statement stays under the 16 MB of MariaDB's
# default max_allowed_packet (MySQL's is 64 MB).
INSERT_CHARS = 2_000_000


def batches(
    rows: Sequence[tuple[str, ...]], size: int, shared: int
) -> Iterator[Sequence[tuple[str, ...]]]:
    """``rows`` in slices of at most ``size`` rows and, unless one row alone
    is larger, ``INSERT_CHARS`` characters, each row counting its own text
    and ``shared`` more."""
    start, total = 0, 0
    for index, row in enumerate(rows):
        length = sum(map(len, row)) + shared
        if index > start and (index - start == size or total + length > INSERT_CHARS):
            yield rows[start:index]
            start, total = index, 0
        total += length
    if start < len(rows):
        yield rows[start:]


def copy_lines(rows: Sequence[tuple[str, ...]]) -> list[str]:
    """Each row as a line of COPY's text format, without its end. Most rows
    need no escape: a row is joined as it is unless it holds a character
    that would need one."""
    lines = []
    for row in rows:
        line = "\t".join(row)
        if (
            "\\" in line
            or "\n" in line
            or "\r" in line
            or line.count("\t") != len(row) - 1
        ):
            line = "\t".join(map(copy_text, row))
        lines.append(line)
    return lines


def copy_text(value) -> str:
    """``value`` as a field of COPY's text format: NULL is ``\\N``, and a
    backslash, newline, carriage return or tab is escaped."""
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        text = "t" if value else "f"
    elif isinstance(value, datetime):
        text = value.isoformat()
    else:
        text = str(value)
    return (
        text.replace("\\", "\\\\")
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
    )
