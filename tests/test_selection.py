from __future__ import annotations

import pandas as pd
import pytest

from cam_core.review.selection import GalleryFilter, errors, filter_predictions, page_count, page_of


def _table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "path": [f"/d/{n}.png" for n in "abcdef"],
            "label": ["cat", "cat", "dog", "dog", "cat", "dog"],
            "pred": ["cat", "dog", "dog", "cat", "cat", "dog"],
            "confidence": [0.99, 0.7, 0.55, 0.95, 0.6, 0.8],
            "loss": [0.01, 1.2, 0.6, 3.0, 0.5, 0.2],
        }
    ).assign(correct=lambda t: t["label"] == t["pred"])


def test_filters_combine_and_keep_the_original_index() -> None:
    t = _table()
    assert len(filter_predictions(t, GalleryFilter())) == 6
    high = filter_predictions(t, GalleryFilter(confidence=(0.75, 1.0)))
    assert sorted(high.index) == [0, 3, 5]
    wrong_cats = filter_predictions(
        t, GalleryFilter(correctness="incorrect", true_classes=("cat",))
    )
    assert list(wrong_cats.index) == [1]
    as_dog = filter_predictions(
        t, GalleryFilter(pred_classes=("dog",), sort_by="confidence", ascending=True)
    )
    assert list(as_dog.index) == [2, 1, 5]
    with pytest.raises(ValueError, match="correctness"):
        GalleryFilter(correctness="maybe")
    with pytest.raises(ValueError, match="sort by"):
        GalleryFilter(sort_by="colour")


def test_errors_are_sorted_worst_first() -> None:
    assert list(errors(_table()).index) == [3, 1]
    assert list(errors(_table(), "confidence").index) == [3, 1]


def test_paging_clamps() -> None:
    rows = _table()
    first, pages = page_of(rows, 1, 4)
    assert pages == 2 and list(first.index) == [0, 1, 2, 3]
    last, _ = page_of(rows, 99, 4)
    assert list(last.index) == [4, 5]
    empty, pages = page_of(rows.iloc[:0], 1, 4)
    assert pages == 1 and empty.empty


@pytest.mark.parametrize(("rows", "per_page", "pages"), [(0, 10, 1), (10, 10, 1), (11, 10, 2)])
def test_page_count(rows: int, per_page: int, pages: int) -> None:
    assert page_count(rows, per_page) == pages


def test_a_gallery_filter_survives_its_link_and_bad_values_fall_back() -> None:
    flt = GalleryFilter(
        confidence=(0.25, 0.9),
        correctness="incorrect",
        true_classes=("cat", "dog"),
        pred_classes=("dog",),
        sort_by="confidence",
        ascending=True,
        verdicts=("unreviewed", "label error"),
        tag="odd",
        suspected_only=True,
        breeds=("Tabby",),
    )
    query = flt.to_query()
    assert query["sort"] == "confidence (lowest first)" and query["conf"] == "0.25-0.9"
    assert GalleryFilter.from_query(query) == flt
    assert GalleryFilter().to_query() == {
        "conf": "0-1",
        "show": "all",
        "sort": "loss (highest first)",
    }
    typed = GalleryFilter.from_query(
        {"conf": "0.9-0.2", "show": "wrong", "sort": "random", "suspected": "0"}
    )
    assert typed == GalleryFilter()
    assert GalleryFilter.from_query({"conf": "x-y"}).confidence == (0.0, 1.0)
    assert GalleryFilter.from_query({"conf": "-1-2"}).confidence == (0.0, 1.0)


def test_the_breed_filter_keeps_only_those_breeds() -> None:
    table = pd.DataFrame(
        {
            "confidence": [0.9, 0.8, 0.7],
            "correct": [True, False, False],
            "label": ["cat", "cat", "dog"],
            "pred": ["cat", "dog", "cat"],
            "loss": [0.1, 2.0, 1.0],
            "breed": ["Tabby", "Bengal", "pug"],
        }
    )
    kept = filter_predictions(table, GalleryFilter(breeds=("Bengal", "pug")))
    assert list(kept["breed"]) == ["Bengal", "pug"]  # highest loss first
    assert filter_predictions(table.drop(columns="breed"), GalleryFilter(breeds=("pug",))).empty


def test_rows_travel_as_compact_ranges_and_select_exactly_those_rows() -> None:
    from cam_core.review.selection import rows_from_text, rows_to_text

    assert rows_to_text((10, 0, 1, 2, 5, 9, 2)) == "0-2,5,9-10"
    assert rows_to_text(()) == "" and rows_to_text((7,)) == "7"
    assert rows_from_text("0-2,5,9-10") == (0, 1, 2, 5, 9, 10)
    assert rows_from_text("3-1,x,4-,-2, 6 ") == (6,)  # reversed, junk and halves are skipped
    flt = GalleryFilter(rows=(0, 1, 2, 5))
    assert GalleryFilter.from_query(flt.to_query()) == flt
    kept = filter_predictions(
        _table(), GalleryFilter(rows=(1, 4, 99), sort_by="path", ascending=True)
    )
    assert list(kept["path"]) == ["/d/b.png", "/d/e.png"]


def test_unfamiliar_and_near_duplicate_filters() -> None:
    table = _table().assign(
        unfamiliar=[True, False, False, True, False, False],
        near_duplicate=[False, True, False, False, False, False],
        leaked=[False, False, False, False, True, False],
    )
    odd = filter_predictions(
        table, GalleryFilter(unfamiliar_only=True, sort_by="path", ascending=True)
    )
    assert list(odd["path"]) == ["/d/a.png", "/d/d.png"]
    copies = filter_predictions(
        table, GalleryFilter(duplicates_only=True, sort_by="path", ascending=True)
    )
    assert list(copies["path"]) == ["/d/b.png", "/d/e.png"]
    assert filter_predictions(_table(), GalleryFilter(unfamiliar_only=True)).empty
