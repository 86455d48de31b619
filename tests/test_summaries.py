from __future__ import annotations

import math

import pandas as pd
import pytest

from cam_core.evaluation.metrics import confusion_matrix, confusion_shares
from cam_core.modelling.model_files import ModelCard
from cam_core.present.report import _display_html, _table
from cam_core.present.summaries import headline_metrics, model_card_rows
from cam_core.present.tables import per_class_display


def _table_of(correct: list[bool], hits: list[float] | None = None) -> pd.DataFrame:
    table = pd.DataFrame(
        {
            "label": ["cat"] * len(correct),
            "pred": ["cat" if c else "dog" for c in correct],
            "correct": correct,
            "loss": [0.5] * len(correct),
        }
    )
    if hits is not None:
        table["pointing_hit.cam"] = hits
    return table


def test_headlines_format_the_table_figures() -> None:
    shown = {
        h.label: h.value for h in headline_metrics(_table_of([True, True, True, False]), "cam")
    }
    assert shown == {
        "Validation images": "4",
        "Accuracy": "75.0%",
        "Errors": "1",
        "Mean loss": "0.500",
    }
    with_masks = headline_metrics(_table_of([True, False], [1.0, math.nan]), "cam")
    assert with_masks[-1].label == "Pointing game" and with_masks[-1].value == "100.0%"


def test_card_rows_survive_missing_metrics() -> None:
    card = ModelCard(arch="democnn2", n_features=128, classes=("cat", "dog"), image_size=96)
    rows = model_card_rows(card)
    assert rows["classes"] == "cat, dog"
    assert rows["training accuracy (valid)"] == "–"


def test_confusion_shares_are_row_shares_with_empty_rows_at_zero() -> None:
    table = pd.DataFrame({"label": ["cat", "cat", "cat"], "pred": ["cat", "dog", "dog"]})
    shares = confusion_shares(confusion_matrix(table, ["cat", "dog", "fox"]))
    assert shares.tolist() == [[1 / 3, 2 / 3, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]


def test_report_tables_keep_integers_integers() -> None:
    frame = pd.DataFrame(
        {"recall": [0.5, 1.0], "support": [191, 209]}, index=pd.Index(["cat", "dog"], name="class")
    )
    assert ">191<" in _table(frame) and "191.0" not in _table(frame)
    table = pd.DataFrame({"label": ["cat"] * 191 + ["dog"], "pred": ["cat"] * 191 + ["cat"]})
    shown = _display_html(per_class_display(table, ["cat", "dog"]))
    assert ">191<" in shown and "191.0" not in shown and ">99.5%<" in shown


def test_breed_table_counts_each_breed() -> None:
    from cam_core.present.summaries import breed_table

    table = pd.DataFrame(
        {
            "breed": ["Tabby", "Tabby", "Tabby", "pug", "pug"],
            "label": ["cat", "cat", "cat", "dog", "dog"],
            "pred": ["cat", "dog", "dog", "dog", "dog"],
            "confidence": [0.9, 0.6, 0.8, 0.7, 0.9],
            "pointing_hit.cam": [1.0, 0.0, 1.0, math.nan, math.nan],
        }
    ).assign(correct=lambda t: t["label"] == t["pred"])
    breeds = breed_table(table, "cam")
    assert list(breeds.index) == ["Tabby", "pug"]  # worst error rate first
    tabby = breeds.loc["Tabby"]
    assert tabby["n"] == 3 and tabby["top_wrong"] == "dog" and tabby["label"] == "cat"
    assert tabby["errors"] == 2 and breeds.loc["pug", "errors"] == 0
    assert math.isclose(tabby["accuracy"], 1 / 3) and math.isclose(tabby["pointing_game"], 2 / 3)
    assert breeds.loc["pug", "top_wrong"] == "" and math.isnan(breeds.loc["pug", "pointing_game"])
    with pytest.raises(ValueError, match="no breeds"):
        breed_table(table.drop(columns="breed"), "cam")
