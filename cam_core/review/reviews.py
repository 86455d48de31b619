"""The analyst's verdicts on validation images, in SQLite beside the analysis.

Verdicts live in ``reviews.sqlite`` in the artifact folder, apart from the artifacts (which an
analysis rewrites), keyed by the model's sha256 and the image path: re-running the analysis of
the same model keeps them, a different model starts a fresh set. The database runs in WAL mode
so that the dashboard's sessions read while one writes; every change is also appended to a
history with who made it and when.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from cam_core.errors import ReviewStoreError

__all__ = [
    "EXPORT_FORMATS",
    "REVIEWS_FILE",
    "VERDICTS",
    "Review",
    "ReviewStore",
    "export_bytes",
    "export_reviews",
    "load_reviews",
    "reviews_table",
    "verdict_counts",
    "with_reviews",
]

log = logging.getLogger(__name__)

REVIEWS_FILE = "reviews.sqlite"
VERDICTS = ("model error", "label error", "ambiguous", "fine")
"""What an analyst can decide about an image."""
EXPORT_FORMATS = ("csv", "json")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS reviews (
    model_sha256 TEXT NOT NULL,
    path TEXT NOT NULL,
    verdict TEXT NOT NULL,
    corrected_label TEXT,
    tags TEXT NOT NULL DEFAULT '[]',
    note TEXT NOT NULL DEFAULT '',
    reviewer TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (model_sha256, path)
);
CREATE TABLE IF NOT EXISTS history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    model_sha256 TEXT NOT NULL,
    path TEXT NOT NULL,
    verdict TEXT,
    corrected_label TEXT,
    tags TEXT NOT NULL DEFAULT '[]',
    note TEXT NOT NULL DEFAULT '',
    reviewer TEXT NOT NULL,
    at TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class Review:
    """One image's current verdict."""

    path: str
    verdict: str
    corrected_label: str | None
    tags: tuple[str, ...]
    note: str
    reviewer: str
    updated_at: str


def _clean_tags(tags: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(t.strip() for t in tags if t and t.strip()))


class ReviewStore:
    """Verdicts of one model's images in one SQLite file.

    Each call opens its own short connection, so one store can be shared by threads (the
    dashboard's sessions); SQLite serialises the writers and waits up to ``timeout`` seconds
    for a lock.

    Raises (every method):
        ReviewStoreError: the file is not a database, is damaged, or stays locked.
    """

    def __init__(self, path: Path, model_sha256: str, timeout: float = 10.0) -> None:
        self.path = path
        self.model_sha256 = model_sha256
        self.timeout = timeout
        with self._connect() as db:
            db.executescript(_SCHEMA)

    @classmethod
    def beside(cls, artifacts_dir: Path, model_sha256: str) -> ReviewStore:
        """The store of an artifact folder (``<folder>/reviews.sqlite``)."""
        return cls(artifacts_dir / REVIEWS_FILE, model_sha256)

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            db = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
        except sqlite3.Error as exc:
            raise ReviewStoreError(f"cannot open the review file {self.path} ({exc})") from None
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            yield db
        except sqlite3.DatabaseError as exc:
            raise ReviewStoreError(self._explain(exc)) from None
        finally:
            db.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: taken at once (no upgrade deadlocks), committed or undone."""
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def _explain(self, exc: sqlite3.DatabaseError) -> str:
        text = str(exc)
        if "locked" in text or "busy" in text:
            return (
                f"the review file {self.path} stayed locked for {self.timeout:.0f} s by another "
                "process; try again"
            )
        if "not a database" in text or "malformed" in text or "corrupt" in text:
            return (
                f"the review file {self.path} is damaged ({text}); move it away to start a new "
                "one (the analysis itself is not affected)"
            )
        return f"the review file {self.path} cannot be used ({text})"

    def save(
        self,
        path: str,
        verdict: str,
        reviewer: str,
        corrected_label: str | None = None,
        tags: Sequence[str] = (),
        note: str = "",
    ) -> Review:
        """Set (or replace) the verdict of one image and log the change.

        Raises:
            ValueError: an unknown verdict or an empty reviewer name.
        """
        if verdict not in VERDICTS:
            raise ValueError(f"unknown verdict {verdict!r}; choose one of {', '.join(VERDICTS)}")
        if not reviewer.strip():
            raise ValueError("a verdict needs the reviewer's name")
        review = Review(
            path=str(path),
            verdict=verdict,
            corrected_label=corrected_label or None,
            tags=_clean_tags(tags),
            note=note.strip(),
            reviewer=reviewer.strip(),
            updated_at=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        values = (
            review.path,
            review.verdict,
            review.corrected_label,
            json.dumps(list(review.tags)),
            review.note,
            review.reviewer,
            review.updated_at,
        )
        with self._transaction() as db:
            db.execute(
                "INSERT INTO reviews VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (model_sha256, path) DO UPDATE SET verdict=excluded.verdict, "
                "corrected_label=excluded.corrected_label, tags=excluded.tags, "
                "note=excluded.note, reviewer=excluded.reviewer, updated_at=excluded.updated_at",
                (self.model_sha256, *values),
            )
            self._log(db, *values)
        return review

    def clear(self, path: str, reviewer: str) -> None:
        """Remove an image's verdict (the history keeps that it was removed, by whom)."""
        now = datetime.now(UTC).isoformat(timespec="seconds")
        with self._transaction() as db:
            db.execute(
                "DELETE FROM reviews WHERE model_sha256 = ? AND path = ?",
                (self.model_sha256, str(path)),
            )
            self._log(db, str(path), None, None, "[]", "", reviewer.strip() or "?", now)

    def _log(self, db: sqlite3.Connection, *values: object) -> None:
        db.execute(
            "INSERT INTO history (model_sha256, path, verdict, corrected_label, tags, note, "
            "reviewer, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (self.model_sha256, *values),
        )

    def get(self, path: str) -> Review | None:
        """The current verdict of one image, or None."""
        with self._connect() as db:
            row = db.execute(
                "SELECT path, verdict, corrected_label, tags, note, reviewer, updated_at "
                "FROM reviews WHERE model_sha256 = ? AND path = ?",
                (self.model_sha256, str(path)),
            ).fetchone()
        return _review(row) if row else None

    def all(self) -> dict[str, Review]:
        """Every current verdict of this model, by image path."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT path, verdict, corrected_label, tags, note, reviewer, updated_at "
                "FROM reviews WHERE model_sha256 = ? ORDER BY path",
                (self.model_sha256,),
            ).fetchall()
        return {row[0]: _review(row) for row in rows}

    def history(self, path: str | None = None) -> list[dict[str, object]]:
        """Every change (oldest first), of one image or of all."""
        query = (
            "SELECT path, verdict, corrected_label, tags, note, reviewer, at FROM history "
            "WHERE model_sha256 = ?"
        )
        args: tuple[str, ...] = (self.model_sha256,)
        if path is not None:
            query += " AND path = ?"
            args += (str(path),)
        with self._connect() as db:
            rows = db.execute(query + " ORDER BY id", args).fetchall()
        keys = ("path", "verdict", "corrected_label", "tags", "note", "reviewer", "at")
        return [dict(zip(keys, row, strict=True)) for row in rows]


def load_reviews(artifacts_dir: Path, model_sha256: str) -> dict[str, Review]:
    """The verdicts of an analysis, without creating a review file where there is none.

    Raises:
        ReviewStoreError: the file is damaged or locked.
    """
    if not (artifacts_dir / REVIEWS_FILE).is_file():
        return {}
    return ReviewStore.beside(artifacts_dir, model_sha256).all()


def _review(row: Sequence[object]) -> Review:
    try:
        tags = tuple(str(t) for t in json.loads(str(row[3])))
    except ValueError:
        tags = ()
    return Review(
        path=str(row[0]),
        verdict=str(row[1]),
        corrected_label=str(row[2]) if row[2] is not None else None,
        tags=tags,
        note=str(row[4]),
        reviewer=str(row[5]),
        updated_at=str(row[6]),
    )


FINDINGS = ("unfamiliar", "less_familiar_than", "near_duplicate", "leaked")
"""Columns of the analysis (format 3) that exports carry along: is the image unfamiliar to
the model, how much, and does it have a near-copy (among validation or training images)."""


def reviews_table(table: pd.DataFrame, reviews: dict[str, Review]) -> pd.DataFrame:
    """The analysis table's rows with a verdict, joined with it: path, given label, predicted,
    confidence, verdict, corrected label, tags, note, reviewer, when, and the image's
    familiarity and near-copy findings where the analysis has them."""
    columns = [
        "row", "path", "label", "pred", "confidence", "verdict", "corrected_label", "tags",
        "note", "reviewer", "updated_at",
    ]  # fmt: skip
    paths = table["path"].astype(str)
    reviewed = table[paths.isin(reviews.keys())]  # vectorised: 100k-row tables stay fast
    rows = []
    for index, path, label, pred, confidence in zip(
        reviewed.index,
        reviewed["path"].astype(str),
        reviewed["label"],
        reviewed["pred"],
        reviewed["confidence"],
        strict=True,
    ):
        review = reviews[path]
        rows.append(
            {
                "row": int(index),
                "path": review.path,
                "label": str(label),
                "pred": str(pred),
                "confidence": float(confidence),
                "verdict": review.verdict,
                "corrected_label": review.corrected_label or "",
                "tags": ", ".join(review.tags),
                "note": review.note,
                "reviewer": review.reviewer,
                "updated_at": review.updated_at,
            }
        )
    frame = pd.DataFrame(rows, columns=columns)
    for column in (c for c in FINDINGS if c in table.columns):
        frame[column] = table.loc[reviewed.index, column].to_numpy()
    return frame


def export_bytes(frame: pd.DataFrame, fmt: str = "csv") -> bytes:
    """A reviews table as CSV or JSON (a list of records).

    Raises:
        ValueError: an unknown format.
    """
    if fmt == "csv":
        return frame.to_csv(index=False).encode("utf-8")
    if fmt == "json":
        return json.dumps(frame.to_dict(orient="records"), indent=2).encode("utf-8")
    raise ValueError(f"unknown export format {fmt!r}; choose {' or '.join(EXPORT_FORMATS)}")


def export_reviews(
    artifacts_dir: Path, out: Path, fmt: str = "csv", verdict: str | None = None
) -> int:
    """Write the reviewed images of an analysis (optionally one verdict) to ``out``.

    Returns:
        The number of rows written.

    Raises:
        ArtifactError: the folder holds no readable analysis.
        ReviewStoreError: the review file is damaged or locked.
        ValueError: an unknown format or verdict.
    """
    from cam_core.analysis.artifacts import read_artifacts
    from cam_core.storage import atomic_write_bytes

    if verdict is not None and verdict not in VERDICTS:
        raise ValueError(f"unknown verdict {verdict!r}; choose one of {', '.join(VERDICTS)}")
    art = read_artifacts(artifacts_dir)
    frame = reviews_table(art.table, load_reviews(artifacts_dir, art.manifest.model_sha256))
    if verdict is not None:
        frame = frame[frame["verdict"] == verdict]
    atomic_write_bytes(out, export_bytes(frame, fmt))
    return len(frame)


def with_reviews(table: pd.DataFrame, reviews: dict[str, Review]) -> pd.DataFrame:
    """A copy of the table with ``verdict`` ("" when unreviewed), ``review_tags`` (tuple),
    ``corrected_label`` and ``reviewer`` columns."""
    out = table.copy()
    found = [reviews.get(str(p)) for p in out["path"]]
    out["verdict"] = [r.verdict if r else "" for r in found]
    out["review_tags"] = [r.tags if r else () for r in found]
    out["corrected_label"] = [(r.corrected_label or "") if r else "" for r in found]
    out["reviewer"] = [r.reviewer if r else "" for r in found]
    return out


def verdict_counts(table: pd.DataFrame, reviews: dict[str, Review]) -> dict[str, int]:
    """Images per verdict among the table's rows, plus ``unreviewed errors``."""
    paths = table["path"].astype(str)
    counts = dict.fromkeys(VERDICTS, 0)
    for path in paths[paths.isin(reviews.keys())]:
        verdict = reviews[path].verdict
        counts[verdict] = counts.get(verdict, 0) + 1
    wrong = paths[~table["correct"].to_numpy(dtype=bool)]
    counts["unreviewed errors"] = int((~wrong.isin(reviews.keys())).sum())
    return counts
