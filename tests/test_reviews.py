"""Verdicts in SQLite: lasting, concurrent, exported, and clear errors for a bad file."""

from __future__ import annotations

import json
import shutil
import sqlite3
import threading
from pathlib import Path

import pandas as pd
import pytest

from cam_core.analysis.artifacts import read_artifacts
from cam_core.cli import main
from cam_core.errors import ReviewStoreError
from cam_core.review.reviews import (
    REVIEWS_FILE,
    VERDICTS,
    ReviewStore,
    export_reviews,
    load_reviews,
    verdict_counts,
    with_reviews,
)
from cam_core.review.selection import UNREVIEWED, GalleryFilter, filter_predictions


def test_a_verdict_lasts_and_keeps_its_history(tmp_path: Path) -> None:
    store = ReviewStore(tmp_path / REVIEWS_FILE, "sha-a")
    store.save(
        "x/1.png",
        "label error",
        "ana",
        corrected_label="dog",
        tags=["blurry", " "],
        note=" fur like a dog ",
    )
    store.save("x/1.png", "ambiguous", "ben", tags=["blurry", "blurry", "crop"])
    again = ReviewStore(tmp_path / REVIEWS_FILE, "sha-a")  # a restart of the server
    review = again.get("x/1.png")
    assert review is not None and review.verdict == "ambiguous" and review.reviewer == "ben"
    assert review.tags == ("blurry", "crop") and review.corrected_label is None
    history = again.history("x/1.png")
    assert [(h["verdict"], h["reviewer"]) for h in history] == [
        ("label error", "ana"),
        ("ambiguous", "ben"),
    ]
    assert history[0]["note"] == "fur like a dog" and history[0]["corrected_label"] == "dog"
    # Another model's verdicts are apart.
    assert ReviewStore(tmp_path / REVIEWS_FILE, "sha-b").all() == {}
    again.clear("x/1.png", "ana")
    assert again.get("x/1.png") is None and again.history()[-1]["verdict"] is None
    with sqlite3.connect(tmp_path / REVIEWS_FILE) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_bad_verdicts_and_names_are_refused(tmp_path: Path) -> None:
    store = ReviewStore(tmp_path / REVIEWS_FILE, "sha")
    with pytest.raises(ValueError, match="unknown verdict"):
        store.save("a.png", "great", "ana")
    with pytest.raises(ValueError, match="reviewer"):
        store.save("a.png", "fine", "  ")
    assert store.all() == {}


def test_eight_sessions_saving_at_once_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / REVIEWS_FILE
    ReviewStore(path, "sha")
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def session(n: int) -> None:
        store = ReviewStore(path, "sha")
        barrier.wait()
        try:
            for i in range(25):
                store.save(f"img/{n}_{i}.png", VERDICTS[(n + i) % 4], f"user{n}", note=str(i))
                store.save(f"img/shared_{i}.png", VERDICTS[n % 4], f"user{n}")
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=session, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    reviews = ReviewStore(path, "sha").all()
    assert len(reviews) == 8 * 25 + 25
    for n in range(8):
        for i in range(25):
            assert reviews[f"img/{n}_{i}.png"].note == str(i)
    assert len(ReviewStore(path, "sha").history()) == 8 * 25 * 2


def test_a_corrupt_or_locked_file_is_one_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "corrupt" / REVIEWS_FILE
    bad.parent.mkdir()
    bad.write_bytes(b"this is no database, just text " * 100)
    with pytest.raises(ReviewStoreError, match="damaged.*move it away"):
        ReviewStore(bad, "sha")
    assert bad.read_bytes().startswith(b"this is no database")  # left as it was

    path = tmp_path / REVIEWS_FILE
    store = ReviewStore(path, "sha", timeout=0.2)
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(ReviewStoreError, match="locked"):
            store.save("a.png", "fine", "ana")
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    store.save("a.png", "fine", "ana")
    assert store.get("a.png") is not None


def test_filters_counts_and_export(tiny_artifacts_dir: Path, tmp_path: Path) -> None:
    art = read_artifacts(tiny_artifacts_dir)
    table = art.table
    wrong = table[~table["correct"]]
    first, second = str(table["path"].iloc[0]), str(table["path"].iloc[1])
    store = ReviewStore.beside(tmp_path, art.manifest.model_sha256)
    store.save(first, "label error", "ana", corrected_label="dog", tags=["odd"], note="n1")
    store.save(second, "fine", "ben")
    reviews = store.all()
    joined = with_reviews(table, reviews)
    only = filter_predictions(joined, GalleryFilter(verdicts=("label error",)))
    assert only["path"].tolist() == [first]
    tagged = filter_predictions(joined, GalleryFilter(tag="odd"))
    assert tagged["path"].tolist() == [first]
    rest = filter_predictions(joined, GalleryFilter(verdicts=(UNREVIEWED,)))
    assert len(rest) == len(table) - 2
    counts = verdict_counts(table, reviews)
    assert counts["label error"] == 1 and counts["fine"] == 1
    assert counts["unreviewed errors"] == len(wrong) - int((~table["correct"]).iloc[:2].sum())
    # Export through the CLI (the verdicts live beside the analysis).
    folder = tmp_path / "copy"
    shutil.copytree(tiny_artifacts_dir, folder)
    shutil.copy(tmp_path / REVIEWS_FILE, folder / REVIEWS_FILE)
    out = tmp_path / "label_errors.csv"
    assert (
        main(
            [
                "reviews",
                "export",
                "--artifacts",
                str(folder),
                "--verdict",
                "label error",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    exported = pd.read_csv(out)
    assert exported[["path", "label", "corrected_label", "note"]].values.tolist() == [
        [first, table["label"].iloc[0], "dog", "n1"]
    ]
    assert export_reviews(folder, tmp_path / "all.json", "json") == 2
    records = json.loads((tmp_path / "all.json").read_text())
    assert {r["verdict"] for r in records} == {"label error", "fine"}
    assert {r["updated_at"] for r in records} == {
        reviews[first].updated_at,
        reviews[second].updated_at,
    }
    assert export_reviews(folder, tmp_path / "default") == 2  # CSV unless asked otherwise
    assert (tmp_path / "default").read_text().splitlines()[0].startswith("row,path,label,")
    # No review file: nothing is created by reading.
    assert load_reviews(tiny_artifacts_dir, art.manifest.model_sha256) == {}
    assert not (tiny_artifacts_dir / REVIEWS_FILE).exists()


def _reviewed_table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "path": ["a.png", "b.png", "c.png", "d.png", "e.png"],
            "label": ["cat", "dog", "cat", "dog", "cat"],
            "pred": ["dog", "dog", "cat", "cat", "dog"],
            "confidence": [0.9, 0.8, 0.7, 0.6, 0.55],
            "correct": [False, True, True, False, False],
            "unfamiliar": [True, False, False, False, True],
            "leaked": [False, False, True, False, False],
        },
        index=pd.RangeIndex(10, 15),
    )


def test_reviews_join_the_rows_they_judge_with_the_findings(tmp_path: Path) -> None:
    from cam_core.review.reviews import export_bytes, reviews_table

    store = ReviewStore(tmp_path / REVIEWS_FILE, "sha")
    store.save("d.png", "label error", "ana", corrected_label="cat", tags=["x", "y"], note="n")
    store.save("a.png", "model error", "ben")
    store.save("zz.png", "fine", "ben")  # not in this table
    reviews = store.all()
    assert list(reviews) == ["a.png", "d.png", "zz.png"]  # ordered by path
    frame = reviews_table(_reviewed_table(), reviews)
    assert frame["row"].tolist() == [10, 13]
    first, second = frame.iloc[0].to_dict(), frame.iloc[1].to_dict()
    assert first["verdict"] == "model error" and first["corrected_label"] == ""
    assert (first["label"], first["pred"], first["confidence"]) == ("cat", "dog", 0.9)
    assert second["tags"] == "x, y" and second["corrected_label"] == "cat"
    assert second["note"] == "n" and second["reviewer"] == "ana"
    assert frame["unfamiliar"].tolist() == [True, False]
    assert frame["leaked"].tolist() == [False, False]
    assert "near_duplicate" not in frame.columns
    assert export_bytes(frame, "json").startswith(b'[\n  {\n    "row": 10,')
    assert export_bytes(frame) == export_bytes(frame, "csv")
    records = json.loads(export_bytes(frame, "json"))
    assert [r["path"] for r in records] == ["a.png", "d.png"] and records[1]["tags"] == "x, y"
    csv = export_bytes(frame, "csv").decode()
    assert csv.splitlines()[0].startswith("row,path,label,pred,confidence,verdict")
    assert csv.splitlines()[2].startswith("13,d.png,dog,cat,0.6,label error,cat")
    with pytest.raises(ValueError, match="unknown export format"):
        export_bytes(frame, "xml")
    empty = reviews_table(_reviewed_table(), {})
    assert empty.empty and list(empty.columns)[:3] == ["row", "path", "label"]


def test_counts_and_columns_per_verdict(tmp_path: Path) -> None:
    store = ReviewStore(tmp_path / REVIEWS_FILE, "sha")
    store.save("a.png", "model error", "ben")
    store.save("b.png", "fine", "ben", corrected_label="")
    store.save("d.png", "label error", "ana", corrected_label="cat", tags=["t"])
    reviews = store.all()
    counts = verdict_counts(_reviewed_table(), reviews)
    # errors: a (reviewed), d (reviewed), e (not): one unreviewed error
    assert counts == {
        "model error": 1,
        "label error": 1,
        "ambiguous": 0,
        "fine": 1,
        "unreviewed errors": 1,
    }
    table = with_reviews(_reviewed_table(), reviews)
    assert table["verdict"].tolist() == ["model error", "fine", "", "label error", ""]
    assert table["corrected_label"].tolist() == ["", "", "", "cat", ""]
    assert table["review_tags"].tolist() == [(), (), (), ("t",), ()]
    assert table["reviewer"].tolist() == ["ben", "ben", "", "ana", ""]
    assert "verdict" not in _reviewed_table().columns  # a copy


def test_history_of_one_image_and_removal_records(tmp_path: Path) -> None:
    store = ReviewStore(tmp_path / REVIEWS_FILE, "sha")
    saved = store.save("a.png", "fine", " ana ")
    assert saved.reviewer == "ana" and saved.updated_at.endswith("+00:00")
    store.save("b.png", "ambiguous", "ben")
    store.clear("a.png", "  ")
    assert [h["path"] for h in store.history()] == ["a.png", "b.png", "a.png"]
    only_a = store.history("a.png")
    assert [h["verdict"] for h in only_a] == ["fine", None]
    assert only_a[-1]["reviewer"] == "?" and only_a[-1]["tags"] == "[]"
    assert store.get("b.png") is not None and store.get("a.png") is None
    with sqlite3.connect(tmp_path / REVIEWS_FILE) as db:
        db.execute("UPDATE reviews SET tags = 'not json' WHERE path = 'b.png'")
    assert store.get("b.png").tags == ()  # type: ignore[union-attr]
    assert load_reviews(tmp_path / "elsewhere", "sha") == {}
    assert not (tmp_path / "elsewhere" / REVIEWS_FILE).exists()


def test_tags_are_trimmed_deduplicated_and_blank_ones_dropped(tmp_path: Path) -> None:
    store = ReviewStore(tmp_path / REVIEWS_FILE, "sha")
    saved = store.save("a.png", "fine", "ana", tags=[" blur ", "", "  ", "blur", "crop"])
    assert saved.tags == ("blur", "crop") and store.get("a.png").tags == ("blur", "crop")  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("error", "message"),
    [
        ("database is locked", "stayed locked for 10 s"),
        ("database table is busy", "stayed locked"),
        ("file is not a database", "is damaged"),
        ("database disk image is malformed", "is damaged"),
        ("something corrupt here", "is damaged"),
        ("disk I/O error", "cannot be used (disk I/O error)"),
    ],
)
def test_database_errors_are_explained(tmp_path: Path, error: str, message: str) -> None:
    store = ReviewStore(tmp_path / REVIEWS_FILE, "sha")
    text = store._explain(sqlite3.DatabaseError(error))
    assert message in text and str(tmp_path / REVIEWS_FILE) in text
    assert store.timeout == 10.0


def test_counts_add_up_and_times_are_utc(tmp_path: Path) -> None:
    store = ReviewStore(tmp_path / REVIEWS_FILE, "sha")
    saved = store.save("a.png", "model error", "ana")
    store.save("d.png", "model error", "ana")
    assert store.get("a.png").updated_at == saved.updated_at  # type: ignore[union-attr]
    assert saved.updated_at.endswith("+00:00")
    counts = verdict_counts(_reviewed_table(), store.all())
    assert counts["model error"] == 2 and counts["unreviewed errors"] == 1
    assert store.history("a.png")[0]["note"] == ""  # no note given: none recorded
    store.clear("a.png", "ana")
    removal = store.history("a.png")[-1]
    assert removal["note"] == "" and removal["verdict"] is None
    assert str(removal["at"]).endswith("+00:00") and set(removal) == {
        "path",
        "verdict",
        "corrected_label",
        "tags",
        "note",
        "reviewer",
        "at",
    }
