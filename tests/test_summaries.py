from __future__ import annotations

import math

import pandas as pd
import pytest

from cam_core.analysis.artifacts import Manifest
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


def test_card_rows_of_a_trained_and_of_an_imported_model() -> None:
    trained = ModelCard(
        arch="democnn2",
        n_features=128,
        classes=("cat", "dog"),
        image_size=96,
        resize="squish",
        data={"source": "demo", "n_images": 2004, "n_valid": 400},
        training={"recipe": "one stage"},
        metrics={"valid_accuracy": 0.975},
        created_at="2026-12-01T10:00:00",
        weights_sha256="0123456789abcdef" + "f" * 48,
    )
    assert model_card_rows(trained) == {
        "architecture": "democnn2",
        "classes": "cat, dog",
        "image size": "96 px (squish)",
        "data": "demo: 2004 images, 400 validation",
        "trained": "2026-12-01T10:00:00",
        "recipe": "one stage",
        "training accuracy (valid)": "97.5%",
        "weights sha256": "0123456789abcdef…",
    }
    bare = model_card_rows(ModelCard("democnn2", 128, ("cat", "dog"), 96))
    assert bare["data"] == "?: ? images, ? validation"
    assert bare["recipe"] == "two stages (the tutorial's)"
    imported = ModelCard(
        arch="resnet18",
        n_features=512,
        classes=("cat", "dog", "fox"),
        image_size=224,
        mean=(0.5, 0.5, 0.5),
        std=(0.25, 0.25, 0.25),
        created_at="2026-12-02",
        weights_sha256="abcdef0123456789" + "0" * 48,
        provenance={
            "source": "pets.safetensors",
            "source_sha256": "99887766554433221100",
            "imported_at": "2026-12-02T08:00:00",
            "head": "GAP + linear",
            "fastai": True,
            "methods": {"cam": "applies", "scorecam": "too slow", "layercam": "no layer"},
        },
    )
    assert model_card_rows(imported) == {
        "architecture": "resnet18 (fastai vision_learner)",
        "classes": "cat, dog, fox",
        "image size": "224 px (center-crop), mean [0.5, 0.5, 0.5], std [0.25, 0.25, 0.25]",
        "imported from": "pets.safetensors (sha256 9988776655443322…)",
        "imported": "2026-12-02T08:00:00",
        "head": "GAP + linear",
        "methods not offered": "scorecam: too slow; layercam: no layer",
        "weights sha256": "abcdef0123456789…",
    }
    plain = ModelCard(
        "resnet18",
        512,
        ("a", "b"),
        224,
        created_at="then",
        provenance={"methods": {"cam": "applies"}},
    )
    rows = model_card_rows(plain)
    assert rows["architecture"] == "resnet18" and rows["imported"] == "then"
    assert rows["methods not offered"] == "none" and rows["head"] == "?"
    assert rows["imported from"] == "? (sha256 …)"


def test_breed_table_orders_by_error_rate_then_size_and_reads_the_majority() -> None:
    from cam_core.present.summaries import breed_table

    table = pd.DataFrame(
        {
            "breed": ["a"] * 2 + ["b"] * 4 + ["c"] * 4 + ["d"] * 3,
            "label": ["cat"] * 2 + ["dog"] * 4 + ["cat"] * 4 + ["dog"] * 3,
            "pred": [
                *("dog", "cat"),
                *("dog", "fox", "fox", "cat"),
                *("cat", "cat", "dog", "cat"),
                *("dog", "dog", "cat"),
            ],
            "confidence": [0.5, 0.7, 0.6, 0.9, 0.8, 0.7, 0.9, 0.9, 0.9, 0.5, 0.6, 0.6, 0.9],
        }
    ).assign(correct=lambda t: t["label"] == t["pred"])
    breeds = breed_table(table, "cam")
    # error rates: a 1/2, b 3/4, c 1/4, d 1/3
    assert list(breeds.index) == ["b", "a", "d", "c"]
    assert breeds.loc["b", "top_wrong"] == "fox" and breeds.loc["b", "errors"] == 3
    assert breeds.loc["b", "error_rate"] == 0.75
    assert breeds.loc["c", "mean_confidence"] == pytest.approx(0.8)
    assert breeds["pointing_game"].isna().all()
    # equal error rates: the bigger breed first
    tied = pd.concat(
        [
            table[table["breed"] == "a"],
            table[table["breed"] == "b"].assign(pred=["dog", "fox", "dog", "cat"]),
        ]
    ).assign(correct=lambda t: t["label"] == t["pred"])
    assert list(breed_table(tied, "cam").index) == ["b", "a"]


def test_pointing_headline_names_the_method() -> None:
    table = _table_of([True, False]).assign(**{"pointing_hit.gradcam": [1.0, 0.0]})
    shown = headline_metrics(table, "gradcam")
    assert [h.label for h in shown] == [
        "Validation images",
        "Accuracy",
        "Errors",
        "Mean loss",
        "Pointing game",
    ]
    assert shown[-1].value == "50.0%" and "(gradcam)" in shown[-1].help
    assert "15 px" in shown[-1].help


def test_finding_headlines_with_and_without_the_evidence() -> None:
    from cam_core.analysis.artifacts import Manifest
    from cam_core.evaluation.familiarity import FamiliarityRecord
    from cam_core.present.summaries import finding_headlines

    table = pd.DataFrame({"unfamiliar": [True, False, False, True, False]})
    scored = Manifest(
        ("cat", "dog"),
        5,
        "sha",
        "/m",
        48,
        familiarity=FamiliarityRecord("training images", 40, 10, 0.1, 0.95, 0.3),
        duplicates={"validation_pairs": 3, "leaked_images": 2, "checked_against_training": True},
    )
    rows = finding_headlines(table, scored)
    assert [(h.label, h.value) for h in rows] == [
        ("Unfamiliar images", "2 (40.0%)"),
        ("Near-duplicate pairs", "3"),
        ("Leaked from training", "2"),
    ]
    assert "(reference: training images)" in rows[0].help
    assert "not checked" not in rows[2].help
    bare = Manifest(("cat", "dog"), 5, "sha", "/m", 48, duplicates={"validation_pairs": 0})
    rows = finding_headlines(table, bare)
    assert [h.value for h in rows] == ["–", "0", "–"]
    assert "(reference: none)" in rows[0].help and "not checked" in rows[2].help
    unscored = Manifest(
        ("cat", "dog"), 5, "sha", "/m", 48, familiarity=FamiliarityRecord("", note="no reference")
    )
    assert finding_headlines(table, unscored)[0].value == "–"
    assert finding_headlines(table.drop(columns="unfamiliar"), scored) == []


def test_breeds_that_tie_keep_their_name_order() -> None:
    from cam_core.present.summaries import breed_table

    table = pd.DataFrame(
        {
            "breed": ["pug", "pug", "akita", "akita"],
            "label": ["dog"] * 4,
            "pred": ["dog", "cat", "cat", "dog"],
            "confidence": [0.9] * 4,
        }
    ).assign(correct=lambda t: t["label"] == t["pred"])
    assert list(breed_table(table, "cam").index) == ["akita", "pug"]


def test_an_imported_card_without_method_notes() -> None:
    card = ModelCard("resnet18", 512, ("a", "b"), 224, provenance={"source": "w.pth"})
    assert model_card_rows(card)["methods not offered"] == "none"


def _errors_table() -> pd.DataFrame:
    # cat→dog ×3 (losses 1, 3, 2), dog→cat ×3, bird→dog ×1, cat right ×3, dog right ×2.
    rows = [("cat", "dog", 1.0), ("cat", "dog", 3.0), ("cat", "dog", 2.0)]
    rows += [("dog", "cat", 0.5), ("dog", "cat", 0.7), ("dog", "cat", 0.6)]
    rows += [("bird", "dog", 9.0)]
    rows += [("cat", "cat", 0.1)] * 3 + [("dog", "dog", 0.1)] * 2
    frame = pd.DataFrame(rows, columns=["label", "pred", "loss"])
    frame["correct"] = frame["label"] == frame["pred"]
    frame.index = pd.Index([f"r{i}" for i in range(len(frame))])
    return frame


def test_largest_confusions_come_first_with_their_worst_image() -> None:
    from cam_core.present.summaries import largest_confusions

    found = largest_confusions(_errors_table(), ("cat", "dog", "bird"))
    assert [(c.true, c.pred, c.count) for c in found] == [
        ("cat", "dog", 3),  # ties broken in class order: cat before dog
        ("dog", "cat", 3),
        ("bird", "dog", 1),
    ]
    assert found[0].example_row == 1 and found[1].example_row == 4  # highest loss, by position
    assert found[0].share == pytest.approx(3 / 6) and found[2].share == 1.0
    assert len(largest_confusions(_errors_table(), ("cat", "dog", "bird"), top=2)) == 2
    assert largest_confusions(_errors_table()[lambda t: t["correct"]], ("cat", "dog")) == []


def _manifest(quality: dict[str, dict[str, float]]) -> Manifest:
    from cam_core.methods import MethodRecord

    methods = {
        name: MethodRecord(
            title=name.upper(), layer="body", additive=False, normalised=True, library="x"
        )
        for name in quality
        if name not in ("random", "centre")
    }
    return Manifest(
        classes=("cat", "dog"),
        n_images=10,
        model_sha256="0",
        model_dir="/m",
        image_size=64,
        methods=methods,
        quality=quality,
        data={"root": "/data/pets", "task": "species"},
    )


BASE = {
    "random": {"deletion_auc": 0.5, "insertion_auc": 0.5},
    "centre": {"deletion_auc": 0.4, "insertion_auc": 0.6},
}


def test_the_method_to_believe_beats_both_baselines_passes_sanity_and_has_the_widest_margin() -> (
    None
):
    from cam_core.present.summaries import method_to_believe

    quality = {
        **BASE,
        "cam": {"deletion_auc": 0.3, "insertion_auc": 0.8, "randomization_spearman": 0.1},
        "gradcam": {"deletion_auc": 0.2, "insertion_auc": 0.9, "randomization_spearman": 0.7},
        "layercam": {"deletion_auc": 0.35, "insertion_auc": 0.7, "randomization_spearman": 0.2},
        "gradcampp": {"deletion_auc": 0.45, "insertion_auc": 0.9, "randomization_spearman": 0.1},
    }
    best, why = method_to_believe(_manifest(quality))
    # gradcam has the widest margin but fails sanity; gradcampp loses to the centred map.
    assert best == "cam"
    assert why.startswith("CAM:") and "deletion AUC 0.300" in why and "+0.10" in why
    assert "2 of 4 methods pass both checks" in why
    none, why = method_to_believe(_manifest({**BASE, "gradcam": quality["gradcam"]}))
    assert none is None and why.startswith("no method beat both baselines")
    unmeasured, why = method_to_believe(_manifest({"cam": {}}))
    assert unmeasured is None and "not measured" in why


def test_the_model_line_names_model_classes_size_and_data() -> None:
    from cam_core.present.summaries import model_line

    card = ModelCard(arch="resnet34", n_features=512, classes=("cat", "dog"), image_size=64)
    line = model_line(_manifest(BASE), card)
    assert (
        line
        == "resnet34 · 2 classes (cat, dog) · 64 px · 10 validation images of /data/pets (species)"
    )
    assert model_line(_manifest(BASE), None).startswith("model (card unavailable) · 2 classes")


def test_a_share_and_its_interval_as_shown() -> None:
    from cam_core.evaluation.shortcuts import wilson_interval
    from cam_core.present.display import MISSING
    from cam_core.present.summaries import _share

    assert _share(2, 10) == ("20.0%", "5.7–51.0%")
    low, high = wilson_interval(1, 1)
    assert _share(1, 1) == ("100.0%", f"{low * 100:.1f}–{high * 100:.1f}%")
    assert _share(0, 0) == (MISSING, "")


def _stakeholder_artifacts(pointing: bool, unfamiliar: bool):  # type: ignore[no-untyped-def]
    from pathlib import Path

    from cam_core.analysis.artifacts import Artifacts
    from cam_core.methods import MethodRecord

    # 10 images: 7 right; cat→dog twice (losses 2, 5), dog→fox once
    table = pd.DataFrame(
        {
            "label": ["cat"] * 5 + ["dog"] * 3 + ["fox"] * 2,
            "pred": ["cat", "cat", "cat", "dog", "dog", "dog", "dog", "fox", "fox", "fox"],
            "loss": [0.1, 0.1, 0.1, 2.0, 5.0, 0.1, 0.1, 3.0, 0.1, 0.1],
            "confidence": [0.9] * 10,
        }
    )
    table["correct"] = table["label"] == table["pred"]
    if pointing:  # 5 images with a mask, 4 hits
        table["pointing_hit.cam"] = [1.0, 1.0, None, 0.0, 1.0, None, 1.0, None, None, None]
    if unfamiliar:  # 2 unfamiliar
        table["unfamiliar"] = [True, False, False, False, True, False, False, False, False, False]
    record = MethodRecord("Class activation map", "body", True, False, "x")
    quality = {
        **BASE,
        "cam": {"deletion_auc": 0.3, "insertion_auc": 0.8, "randomization_spearman": 0.1},
    }
    manifest = Manifest(
        ("cat", "dog", "fox"),
        10,
        "sha",
        "/m",
        64,
        methods={"cam": record},
        quality=quality,
        data={"root": "/data/pets", "task": "species"},
    )
    return Artifacts(Path("/nowhere"), manifest, table, {})


def test_the_stakeholder_summary_s_numbers_intervals_and_pages() -> None:
    from cam_core.present.summaries import (
        SummaryNumber,
        _share,
        largest_confusions,
        method_to_believe,
        model_line,
        stakeholder_summary,
    )

    art = _stakeholder_artifacts(pointing=True, unfamiliar=True)
    card = ModelCard(arch="resnet34", n_features=512, classes=("cat", "dog", "fox"), image_size=64)
    counted = {"right": 2, "unreviewed errors": 1}
    summary = stakeholder_summary(art, card, counted)
    assert summary.numbers == (
        SummaryNumber(
            "Accuracy",
            "70.0%",
            "7 of 10 validation images predicted right (95% Wilson interval).",
            "overview",
            _share(7, 10)[1],
        ),
        SummaryNumber("Errors", "3", "Misclassified validation images.", "misclassified"),
        SummaryNumber(
            "Maps point at the object",
            "80.0%",
            "Share of the 5 images with a mask whose true-class map (Class activation map) "
            "peaks on the object (95% interval).",
            "quality",
            _share(4, 5)[1],
        ),
        SummaryNumber(
            "Unfamiliar images",
            "20.0%",
            "Validation images less familiar to the model than its threshold (about 5% by "
            "construction on familiar data).",
            "embedding",
            _share(2, 10)[1],
        ),
    )
    assert summary.model_line == model_line(art.manifest, card)
    assert "resnet34 · 3 classes" in summary.model_line
    assert summary.confusions == tuple(largest_confusions(art.table, art.manifest.classes))
    assert [(c.true, c.pred, c.count) for c in summary.confusions] == [
        ("cat", "dog", 2),
        ("dog", "fox", 1),
    ]
    assert (summary.believe, summary.believe_why) == method_to_believe(art.manifest)
    assert summary.believe == "cam"
    assert summary.verdicts == counted and summary.verdicts is not counted
    bare = stakeholder_summary(_stakeholder_artifacts(False, False), None, None)
    assert [n.label for n in bare.numbers] == ["Accuracy", "Errors"]
    assert bare.verdicts is None and bare.model_line.startswith("model (card unavailable)")


def test_model_lines_of_imported_models_many_classes_and_no_task() -> None:
    from dataclasses import replace

    from cam_core.present.summaries import model_line

    card = ModelCard(arch="resnet50", n_features=2048, classes=("a", "b", "c", "d"), image_size=224)
    imported = replace(card, provenance={"weights": "w.pth"})
    assert imported.imported and not card.imported
    four = replace(_manifest(BASE), classes=("a", "b", "c", "d"), data={"source": "demo"})
    assert model_line(four, imported) == (
        "resnet50 (imported) · 4 classes (a, b, c, d) · 64 px · 10 validation images of demo"
    )
    five = replace(four, classes=("a", "b", "c", "d", "e"))
    assert "5 classes (a, b, c, d …) ·" in model_line(five, card)
    assert model_line(replace(four, data={}), card).endswith("validation images of ?")


def test_the_method_to_believe_by_its_margin_and_by_name_without_a_record() -> None:
    from dataclasses import replace

    from cam_core.present.summaries import method_to_believe

    quality = {
        **BASE,
        # the widest insertion − deletion margin (0.6), though the smaller sum
        "cam": {"deletion_auc": 0.1, "insertion_auc": 0.7, "randomization_spearman": 0.1},
        "gradcam": {"deletion_auc": 0.3, "insertion_auc": 0.8, "randomization_spearman": 0.1},
    }
    assert method_to_believe(_manifest(quality))[0] == "cam"
    unrecorded = replace(_manifest(quality), methods={})
    best, why = method_to_believe(unrecorded)
    assert best == "cam" and why.startswith("cam: removing what it marks")
    assert method_to_believe(_manifest({"cam": {}})) == (
        None,
        "the maps' quality was not measured (the analysis ran without it)",
    )


def test_largest_confusions_by_count_then_class_order_from_any_column_type() -> None:
    from cam_core.present.summaries import largest_confusions

    # four pairs: cat→fox and cat→dog (2 each; fox appears first), dog→cat 2, fox→cat 1
    rows = [("cat", "fox", 1.0), ("cat", "fox", 2.0), ("cat", "dog", 1.0), ("cat", "dog", 4.0)]
    rows += [("dog", "cat", 1.0), ("dog", "cat", 1.0), ("fox", "cat", 1.0), ("fox", "fox", 0.1)]
    table = pd.DataFrame(rows, columns=["label", "pred", "loss"])
    table["correct"] = (table["label"] == table["pred"]).astype(object)  # object, not bool
    found = largest_confusions(table, ("cat", "dog", "fox"))
    assert [(c.true, c.pred, c.count) for c in found] == [
        ("cat", "dog", 2),
        ("cat", "fox", 2),
        ("dog", "cat", 2),
    ]
    assert found[0].example_row == 3 and found[0].share == 0.5


def test_leaks_are_not_counted_where_training_images_were_not_checked() -> None:
    from cam_core.present.summaries import finding_headlines

    table = pd.DataFrame({"unfamiliar": [False, False]})
    manifest = Manifest(
        ("cat", "dog"), 2, "sha", "/m", 48, duplicates={"leaked_images": 0, "validation_pairs": 1}
    )
    assert finding_headlines(table, manifest)[2].value == "–"
