"""The answers CSV: one row per answer, appended atomically (a reader or a crash never sees half a row).

Each append writes the whole file to a temporary file beside it and renames it over the old one
(``tinct.io.atomic_path``), under a lock: a study's file is small (a row per answer), and this way a
killed server leaves either the old file or the new one. An existing file is continued if its
header is ours, refused otherwise.
"""
from __future__ import annotations

import csv
import io
import threading
from pathlib import Path

from ..errors import TinctError
from ..io import atomic_path

COLUMNS = ["time_utc", "participant", "trial", "photo", "model", "real_side", "chosen_side", "fooled",
           "response_ms", "shown_seconds"]


class AnswerLog:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        if self.path.exists():
            read_answers(self.path)  # refuses a file that is not an answers CSV before anyone answers

    def append(self, row: dict) -> None:
        line = io.StringIO()
        csv.DictWriter(line, COLUMNS, lineterminator="\n").writerow({k: row[k] for k in COLUMNS})
        with self._lock:
            old = self.path.read_bytes() if self.path.exists() else (",".join(COLUMNS) + "\n").encode()
            if not old.endswith(b"\n"):
                old += b"\n"
            with atomic_path(self.path) as tmp:
                Path(tmp).write_bytes(old + line.getvalue().encode())


def read_answers(path: str | Path) -> list[dict]:
    """The rows of an answers CSV as dicts; a one-line ``TinctError`` if it is not one."""
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if reader.fieldnames is None or [c for c in COLUMNS if c not in reader.fieldnames]:
                raise TinctError(f"{path}: not a tinct study answers file (columns: {', '.join(COLUMNS)})")
            rows = list(reader)
    except FileNotFoundError:
        raise TinctError(f"{path}: no such file") from None
    except (UnicodeDecodeError, csv.Error) as e:
        raise TinctError(f"{path}: not a readable CSV ({type(e).__name__})") from None
    for i, r in enumerate(rows, 2):
        if r["fooled"] not in ("0", "1") or r["real_side"] not in ("left", "right") \
                or r["chosen_side"] not in ("left", "right"):
            raise TinctError(f"{path}: line {i}: bad row (fooled must be 0/1, sides left/right)")
    return rows
