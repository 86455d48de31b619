"""AppTest runs of every page on a quick trained demo run."""

from __future__ import annotations

import io
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from cam_core.analysis.artifacts import read_artifacts
from cam_core.review.calibration import expected_calibration_error
from cam_core.review.label_issues import suspected_label_errors
from cam_core.review.reviews import REVIEWS_FILE, ReviewStore
from dashboard import pages, resources

APP = str(Path(__file__).resolve().parents[1] / "dashboard" / "app.py")
PAGES = {spec.script: spec.title for spec in pages.PAGES}


@pytest.fixture()
def app(quick_run: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("CAM_LENS_HOME", str(quick_run.parents[1]))
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    return at


def _open(at: AppTest, page: str) -> AppTest:
    at.switch_page(page)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _matched(at: AppTest) -> int:
    for md in at.markdown:
        found = re.match(r"\*\*(\d+)\*\* of \d+ images match", md.value)
        if found:
            return int(found.group(1))
    raise AssertionError("no match count on the page")


@pytest.mark.parametrize("page", list(PAGES))
def test_every_page_renders_without_exception(app: AppTest, page: str) -> None:
    at = _open(app, page)
    assert [t.value for t in at.title] == [PAGES[page]]
    assert not at.error


def test_overview_shows_metrics_and_report(app: AppTest, quick_run: Path) -> None:
    at = _open(app, "views/overview.py")
    labels = {m.label: m.value for m in at.metric}
    table = read_artifacts(quick_run / "artifacts").table
    assert labels["Validation images"] == str(len(table))
    assert labels["Accuracy"] == f"{table['correct'].mean():.1%}"
    assert labels["Errors"] == str(int((~table["correct"]).sum()))


def test_gallery_count_follows_the_confidence_slider(app: AppTest, quick_run: Path) -> None:
    table = read_artifacts(quick_run / "artifacts").table
    at = _open(app, "views/gallery.py")
    assert _matched(at) == len(table)
    low = float(table["confidence"].median())
    at.slider(key="gal_conf").set_value((low, 1.0)).run()
    expected = int(table["confidence"].between(low, 1.0).sum())
    assert _matched(at) == expected < len(table)
    at.radio(key="gal_correct").set_value("incorrect").run()
    assert _matched(at) == int((table["confidence"].between(low, 1.0) & ~table["correct"]).sum())


def test_confusion_cell_opens_the_filtered_gallery(app: AppTest, quick_run: Path) -> None:
    table = read_artifacts(quick_run / "artifacts").table
    at = _open(app, "views/overview.py")
    at.selectbox(key="overview_true").set_value("cat")
    at.selectbox(key="overview_pred").set_value("dog")
    at.button(key="overview_open").click().run()
    assert [t.value for t in at.title] == ["Gallery"]
    assert _matched(at) == int(((table["label"] == "cat") & (table["pred"] == "dog")).sum())


def test_misclassified_lists_exactly_the_wrong_rows(app: AppTest, quick_run: Path) -> None:
    table = read_artifacts(quick_run / "artifacts").table
    wrong = table[~table["correct"]]
    at = _open(app, "views/misclassified.py")
    assert any(f"**{len(wrong)}** of {len(table)}" in m.value for m in at.markdown)
    shown = {c.value for c in at.caption if c.value.endswith(".png")}
    assert shown == {p.rsplit("/", 1)[-1] for p in wrong["path"]}


def test_heatmap_page_has_a_figure_per_class_and_the_margin_statement(app: AppTest) -> None:
    at = _open(app, "views/heatmaps.py")
    charts = at.get("plotly_chart")
    assert len(charts) == 3  # two classes + the difference map
    assert any("logit margin" in c.value for c in at.caption)


def test_the_sidebar_method_changes_the_maps_and_their_titles(app: AppTest) -> None:
    at = _open(app, "views/heatmaps.py")
    assert set(at.selectbox(key="shared_method").options) == {
        "CAM (exact)",
        "Grad-CAM",
        "Grad-CAM++",
        "Score-CAM",
        "Layer-CAM",
    }
    titles = [c.proto.spec for c in at.get("plotly_chart")]
    assert sum(bool(re.search(r": mean [+-]\d\.\d+ = logit", t)) for t in titles) == 2
    assert sum("logit margin" in t for t in titles) == 1
    at.selectbox(key="shared_method").set_value("gradcam").run()
    assert not at.exception
    titles = [c.proto.spec for c in at.get("plotly_chart")]
    assert sum("per map)" in t for t in titles) == 2 and len(titles) == 2
    assert any("difference means nothing" in i.value for i in at.info)


def test_misclassified_shows_a_second_method_side_by_side(app: AppTest, quick_run: Path) -> None:
    table = read_artifacts(quick_run / "artifacts").table
    n_wrong = min(10, int((~table["correct"]).sum()))
    at = _open(app, "views/misclassified.py")
    assert len(at.get("image")) == 3 * n_wrong
    at.selectbox(key="mis_second").set_value("layercam").run()
    assert not at.exception
    assert len(at.get("image")) == 5 * n_wrong


def test_compare_page_has_a_row_and_scores_per_method(app: AppTest, quick_run: Path) -> None:
    art = read_artifacts(quick_run / "artifacts")
    at = _open(app, "views/compare.py")
    text = " ".join(m.value for m in at.markdown)
    for record in art.manifest.methods.values():
        assert f"**{record.title}**" in text
    assert text.count("deletion AUC:") == len(art.manifest.methods)
    row = art.table.iloc[0]
    expected = f"deletion AUC: {row['deletion_auc.gradcam']:.3f}"
    assert expected in text


def test_quality_page_table_badges_and_the_step_slider(app: AppTest, quick_run: Path) -> None:
    art = read_artifacts(quick_run / "artifacts")
    at = _open(app, "views/quality.py")
    tables = at.dataframe
    quality = tables[0].value
    assert len(quality) == len(art.manifest.methods) + 2  # + random and centre
    assert set(quality["sanity"]) <= {"passed", "FAILED", "–"}
    assert list(quality["faithful"][-2:]) == ["–", "–"]  # the baselines get no verdict
    by_class = tables[1].value
    assert set(by_class.index) == set(art.table["label"])
    at.slider(key="qual_step").set_value(16).run()
    assert not at.exception
    captions = [img.caption for element in at.get("image") for img in element.proto.imgs]
    assert any(c.startswith("deletion: top 100% removed") for c in captions)
    assert any(c.startswith("insertion: top 100% revealed") for c in captions)
    assert len(at.get("plotly_chart")) == 1


def test_breeds_page_under_both_tasks(app: AppTest, quick_run: Path, quick_breed_run: Path) -> None:
    species = read_artifacts(quick_run / "artifacts").table
    at = _open(app, "views/breeds.py")
    shown = at.dataframe[0].value
    assert set(shown.index) == set(species["breed"])
    assert set(shown["label"]) == {"cat", "dog"}
    for breed, row in shown.iterrows():
        mine = species[species["breed"] == breed]
        assert row["n"] == len(mine)
        assert row["accuracy"] == mine["correct"].mean()
    assert len(at.get("plotly_chart")) == 1
    at.selectbox(key="shared_choice").set_value(str(quick_breed_run / "artifacts")).run()
    assert not at.exception
    assert any("Task: **breed**" in c.value for c in at.sidebar.caption)
    shown = at.dataframe[0].value
    assert set(shown["label"]) == set(shown.index)  # under the breed task a breed is a class
    wrong = read_artifacts(quick_breed_run / "artifacts").table
    per_breed = (~wrong["correct"]).groupby(wrong["breed"]).sum()
    n_wrong = sum(min(5, n) for n in per_breed)
    assert len(at.get("image")) == n_wrong
    # Each strip's heading counts that breed's errors exactly (not a rounded rate times n).
    headings = {m.value for m in at.markdown if "error" in m.value and m.value.startswith("**")}
    for breed, n in per_breed[per_breed > 0].items():
        assert any(
            h.startswith(f"**{breed}** (") and h.endswith(f": {n} error{'s' * (n != 1)}")
            for h in headings
        )
    if n_wrong:
        first = next(b for b in at.button if b.key.startswith("breed_open_"))
        first.click().run()
        assert [t.value for t in at.title] == ["Class heatmaps"]


def _png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (80, 60), (200, 120, 40)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_upload_valid_and_junk_files(app: AppTest) -> None:
    at = _open(app, "views/try_photos.py")
    at.file_uploader(key="try_upload").set_value(
        [
            ("photo.png", _png_bytes(), "image/png"),
            ("junk.jpg", b"definitely not an image", "image/jpeg"),
        ]
    )
    at.run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "junk.jpg" in errors[0]
    headers = [s.value for s in at.subheader]
    assert headers[0].startswith("photo.png: ") and headers[1:] == ["Where your photos land"]
    assert re.search(r"\((0|1)\.\d\d\)$", headers[0])


def test_empty_home_offers_demo_training(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAM_LENS_HOME", str(tmp_path / "empty"))
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception
    assert any("does not exist" in w.value for w in at.warning)
    assert at.button(key="setup_train").label == "Train the demo models"


def test_a_broken_folder_shows_an_error_and_others_still_work(
    app: AppTest, quick_run: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "manifest.json").write_text('{"format_version": 99}')
    at = _open(app, "views/gallery.py")
    at.selectbox(key="shared_choice").set_value("Another folder…").run()
    at.text_input(key="shared_custom_dir").input(str(broken)).run()
    assert not at.exception
    assert any("upgrade cam_core" in w.value for w in at.warning)
    assert not at.title  # the page stopped after the message
    at.selectbox(key="shared_choice").set_value(str(quick_run / "artifacts")).run()
    assert not at.exception
    assert [t.value for t in at.title] == ["Gallery"]


@pytest.fixture()
def quick_preset(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Make the dashboard's demo button train the seconds-long preset in an empty home."""
    from cam_core.analysis import demo

    preset = demo.demo_configs
    monkeypatch.setattr(
        demo,
        "demo_configs",
        lambda quick=False, task="species", shortcut=False: preset(True, task, shortcut),
    )
    home = tmp_path / "home"
    monkeypatch.setenv("CAM_LENS_HOME", str(home))
    return home


def test_train_button_builds_the_demo_and_loads_it(quick_preset: Path) -> None:
    from dashboard.training_panel import demo_job

    at = AppTest.from_file(APP, default_timeout=300)
    at.run()
    at.button(key="setup_train").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert demo_job().wait(300).state == "done"
    for task in ("species", "breed"):
        assert (quick_preset / "demo" / task / "artifacts" / "manifest.json").exists()
    at.run()
    assert [t.value for t in at.title] == ["Overview"]
    assert {m.label for m in at.metric} >= {"Validation images", "Accuracy"}
    assert any("Task: **species**" in c.value for c in at.sidebar.caption)


def test_a_second_training_is_told_one_is_already_running(quick_preset: Path) -> None:
    from cam_core.storage import folder_lock
    from dashboard.training_panel import demo_job

    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    with folder_lock(quick_preset / "demo" / "species" / "model", "training"):
        at.button(key="setup_train").click().run()
        assert demo_job().wait(120).error_kind == "AlreadyRunningError"
    at.run()
    assert not at.exception
    assert any("already running" in w.value for w in at.warning)
    assert not (quick_preset / "demo" / "species" / "artifacts" / "manifest.json").exists()


@pytest.fixture()
def imported_app(imported_home: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("CAM_LENS_HOME", str(imported_home))
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.selectbox(key="shared_choice").set_value(
        str(imported_home / "imports" / "mobilenet" / "artifacts")
    ).run()
    return at


@pytest.mark.parametrize("page", list(PAGES))
def test_every_page_works_for_an_imported_model_without_cam(
    imported_app: AppTest, page: str
) -> None:
    at = _open(imported_app, page)
    assert [t.value for t in at.title] == [PAGES[page]]
    assert not at.error
    assert "CAM (exact)" not in at.selectbox(key="shared_method").options
    why = [c.value for c in at.sidebar.caption if c.value.startswith("Not offered")]
    assert why and "CAM (exact)" in why[0] and "Hardswish" in why[0]


def test_imported_model_card_and_cam_with_bias(imported_app: AppTest, imported_home: Path) -> None:
    at = _open(imported_app, "views/overview.py")
    rows = " ".join(" ".join(map(str, t.value.to_numpy().ravel())) for t in at.table)
    assert "mobilenet.safetensors" in rows and "Hardswish" in rows
    at.selectbox(key="shared_choice").set_value(
        str(imported_home / "imports" / "resnet" / "artifacts")
    ).run()
    at = _open(at, "views/heatmaps.py")
    assert "CAM (exact)" in at.selectbox(key="shared_method").options
    at.selectbox(key="shared_method").set_value("cam").run()
    titles = [c.proto.spec for c in at.get("plotly_chart")]
    assert (
        sum(bool(re.search(r"mean [+-]\d\.\d+ \+ bias [+-]\d\.\d+ = logit", t)) for t in titles)
        == 2
    )
    assert any("mean + bias = logit" in c.value for c in at.sidebar.caption)
    at = _open(at, "views/try_photos.py")
    at.file_uploader(key="try_upload").set_value([("photo.png", _png_bytes(), "image/png")]).run()
    assert not at.exception and not at.error


def test_calibration_page_diagram_ece_and_the_confidently_wrong_list(
    app: AppTest, quick_run: Path
) -> None:
    table = read_artifacts(quick_run / "artifacts").table
    at = _open(app, "views/calibration.py")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Expected calibration error"] == f"{expected_calibration_error(table):.3f}"
    assert len(at.get("plotly_chart")) == 1
    at.slider(key="cal_threshold").set_value(0.5).run()
    wrong = table[~table["correct"] & (table["confidence"] >= 0.5)]
    assert any(f"**{len(wrong)}** wrong predictions" in m.value for m in at.markdown)
    if len(wrong):
        at.button(key="cal_open").click().run()
        assert [t.value for t in at.title] == ["Gallery"]
        assert _matched(at) == len(wrong)


def test_suspected_label_error_filter_and_sort(app: AppTest, quick_run: Path) -> None:
    art = read_artifacts(quick_run / "artifacts")
    suspected = suspected_label_errors(art.table, art.manifest.classes)
    at = _open(app, "views/gallery.py")
    at.toggle(key="gal_suspected").set_value(True).run()
    assert not at.exception
    assert _matched(at) == int(suspected["label_issue_rank"].notna().sum())
    at.selectbox(key="gal_sort").set_value("suspected label error first").run()
    assert not at.exception


@pytest.fixture()
def own_run(quick_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the quick species run in a home of its own (for tests that write to it)."""
    home = tmp_path / "home"
    shutil.copytree(quick_run.parents[1], home)
    monkeypatch.setenv("CAM_LENS_HOME", str(home))
    return home / "demo" / "species"


def test_verdicts_from_every_view_last_and_are_counted(own_run: Path) -> None:
    folder = own_run / "artifacts"
    art = read_artifacts(folder)
    app = AppTest.from_file(APP, default_timeout=120)
    app.run()
    wrong = art.table[~art.table["correct"]]
    at = _open(app, "views/review.py")
    at.text_input(key="shared_reviewer").set_value("ana").run()
    first = str(wrong.sort_values("loss", ascending=False)["path"].iloc[0])
    at.button(key="rev_set_model_error").click().run()
    assert not at.exception
    store = ReviewStore.beside(folder, art.manifest.model_sha256)
    saved = store.get(first)
    assert saved is not None and saved.verdict == "model error" and saved.reviewer == "ana"
    # The class heatmaps' form, on the same image (a fresh session: it was stored).
    at = _open(app, "views/heatmaps.py")
    at.radio(key="heat_review_verdict").set_value("label error")
    at.text_input(key="heat_review_tags").set_value("blurry, odd")
    at.button(key="FormSubmitter:heat_review_form-Save verdict").click().run()
    assert not at.exception
    path = str(art.table["path"].iloc[at.selectbox(key="heat_row").value])
    review = store.get(path)
    assert review is not None and review.verdict == "label error"
    assert review.tags == ("blurry", "odd")
    at = _open(at, "views/overview.py")
    counts = {m.label: m.value for m in at.metric}
    assert int(counts["label error"]) + int(counts["model error"]) >= 1
    at = _open(at, "views/gallery.py")
    at.text_input(key="gal_tag").set_value("odd").run()
    assert _matched(at) == 1


def test_a_deep_link_opens_that_image(quick_run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAM_LENS_HOME", str(quick_run.parents[1]))
    art = read_artifacts(quick_run / "artifacts")
    name = str(art.table["path"].iloc[3]).rsplit("/", 1)[-1]
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params.update(
        {
            "page": "heatmaps",
            "analysis": str(quick_run / "artifacts"),
            "method": "gradcam",
            "image": name,
        }
    )
    at.run()
    assert not at.exception
    assert [t.value for t in at.title] == ["Class heatmaps"]
    assert at.selectbox(key="heat_row").value == 3
    assert at.selectbox(key="shared_method").value == "gradcam"


def test_a_damaged_review_file_is_one_line_and_pages_still_work(own_run: Path) -> None:
    folder = own_run / "artifacts"
    (folder / REVIEWS_FILE).write_bytes(b"garbage, not sqlite " * 50)
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    for page in ("views/overview.py", "views/gallery.py", "views/review.py"):
        at = _open(at, page)
        assert [t.value for t in at.title] == [PAGES[page]]
        errors = [e.value for e in at.error]
        assert len(errors) == 1 and "damaged" in errors[0] and "\n" not in errors[0]
    assert (folder / REVIEWS_FILE).read_bytes().startswith(b"garbage")


def test_a_modified_map_file_is_caught_by_the_background_hash_check(own_run: Path) -> None:
    maps = own_run / "artifacts" / "maps" / "gradcam.npy"
    data = bytearray(maps.read_bytes())
    data[-8:] = bytes(255 - b for b in data[-8:])  # same size and shape, other values
    maps.write_bytes(bytes(data))
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    assert not at.exception
    version = resources.stamp(own_run / "artifacts")
    for _ in range(100):  # the check runs in a background thread
        if resources.map_check(str(own_run / "artifacts"), version) != "pending":
            break
        time.sleep(0.1)
    at.run()
    shown = [e.value for kind in (at.markdown, at.error, at.warning, at.info) for e in kind]
    assert any("gradcam.npy does not match its manifest hash" in str(t) for t in shown)


def test_big_analyses_pick_images_by_row_and_file_name(
    app: AppTest, quick_run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dashboard import widgets

    monkeypatch.setattr(widgets, "LARGE_TABLE", 3)  # the quick run has more images than that
    table = read_artifacts(quick_run / "artifacts").table
    at = _open(app, "views/heatmaps.py")
    assert at.number_input(key="heat_row").value == 0
    name = str(table["path"].iloc[4]).rsplit("/", 1)[-1]
    at.text_input(key="heat_row_find").set_value(name).run()
    assert not at.exception
    assert at.number_input(key="heat_row").value == 4
    assert any(c.value.startswith(name) for c in at.caption)


def _link_examples(art_table: pd.DataFrame) -> dict[str, str]:
    """A value, other than the page's default, for every link parameter a page writes."""
    wrong = art_table[~art_table["correct"]].sort_values("loss", ascending=False)
    return {
        "image": str((wrong if len(wrong) else art_table)["path"].iloc[0]).rsplit("/", 1)[-1],
        "class": str(art_table["label"].iloc[-1]),
        "threshold": "0.75",
        "colour": "confidence",
        "finding": "1",
    }


GALLERY_LINK = {
    "conf": "0.2-0.95",
    "show": "incorrect",
    "true": "cat",
    "pred": "dog",
    "sort": "confidence (lowest first)",
    "tag": "odd",
    "suspected": "1",
    "breed": "Tabby,Bengal",
    "unfamiliar": "1",
    "duplicates": "1",
    "rows": "0-3,7",
    "slice": "format:PNG",
}


@pytest.mark.parametrize(
    "slug", [spec.slug for spec in pages.PAGES if spec.params or spec.query_object]
)
def test_every_link_parameter_a_page_writes_is_restored_by_opening_the_link(
    quick_run: Path, monkeypatch: pytest.MonkeyPatch, slug: str
) -> None:
    monkeypatch.setenv("CAM_LENS_HOME", str(quick_run.parents[1]))
    art = read_artifacts(quick_run / "artifacts")
    spec = pages.page(slug)
    examples = _link_examples(art.table)
    link = {"page": slug, "analysis": str(quick_run / "artifacts"), "method": "gradcam"}
    link.update({p.name: examples[p.name] for p in spec.params})
    if spec.query_object is not None:
        link.update(GALLERY_LINK)
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params.update(link)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert [t.value for t in at.title] == [spec.title]
    # What the page wrote back into the address bar after opening the link (the page rewrites
    # every parameter on each run): the same view, so every parameter was restored.
    assert dict(at.query_params) == link


def test_the_report_and_the_pages_show_the_same_values(app: AppTest, quick_run: Path) -> None:
    from cam_core.present.report import build_report

    art = read_artifacts(quick_run / "artifacts")
    html = build_report(art, None, top_n=1)
    quality = _open(app, "views/quality.py").dataframe[0].value
    overview = _open(AppTest.from_file(APP, default_timeout=120), "views/overview.py")
    per_class = overview.dataframe[0].value
    for frame in (quality, per_class):
        assert len(frame) >= 2
        for label, row in frame.iterrows():
            cells = "".join(f'<td class="num">{value}</td>' for value in row)
            assert f"<tr><th>{label}</th>{cells}</tr>" in html, (label, list(row))
    assert "None" not in quality.to_numpy().ravel().tolist()
    assert set(quality.loc[[t for t in quality.index if "baseline" in t], "sanity"]) == {"–"}
    accuracy = next(m.value for m in overview.metric if m.label == "Accuracy")
    assert f"<b>{accuracy}</b>" in html


def test_embedding_map_colours_counts_and_an_old_analysis(
    app: AppTest, quick_run: Path, format_2_copy: Callable[[Path], Path]
) -> None:
    at = _open(app, "views/embedding.py")
    options = at.selectbox(key="emb_colour").options
    assert {"true class", "familiarity", "verdict", "suspected label error"} <= set(options)
    for colour in ("familiarity", "verdict", "correct or wrong"):
        at.selectbox(key="emb_colour").set_value(colour).run()
        assert not at.exception, colour
        assert len(at.get("plotly_chart")) == 1
    labels = {m.label for m in at.metric}
    assert {"Unfamiliar images", "Near-duplicate pairs", "Leaked from training"} <= labels
    at.button(key="emb_unfamiliar").click().run()
    assert [t.value for t in at.title] == ["Gallery"]
    table = read_artifacts(quick_run / "artifacts").table
    assert _matched(at) == int(table["unfamiliar"].sum())
    # An analysis made before features were stored: one sentence on how to get the map.
    old = format_2_copy(quick_run / "artifacts")
    at.selectbox(key="shared_choice").set_value("Another folder…").run()
    at.text_input(key="shared_custom_dir").input(str(old)).run()
    at = _open(at, "views/embedding.py")
    assert any("re-running `python -m cam_core analyze` adds it" in i.value for i in at.info)


def test_a_selection_from_the_map_opens_in_the_gallery_by_link(
    quick_run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAM_LENS_HOME", str(quick_run.parents[1]))
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params.update(
        {"page": "gallery", "analysis": str(quick_run / "artifacts"), "rows": "0-2,5"}
    )
    at.run()
    assert not at.exception
    assert _matched(at) == 4
    assert any("a selection of images" in i.value for i in at.info)
    at.button(key="gal_rows_clear").click().run()
    assert _matched(at) == len(read_artifacts(quick_run / "artifacts").table)


def test_an_unfamiliar_upload_gets_a_warning_above_its_prediction(
    trained_species_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import matplotlib.cbook as cbook

    home = tmp_path / "home"
    (home / "demo").mkdir(parents=True)
    (home / "demo" / "species").symlink_to(trained_species_run)
    monkeypatch.setenv("CAM_LENS_HOME", str(home))
    with cbook.get_sample_data("grace_hopper.jpg") as handle:
        person = handle.read()
    table = read_artifacts(trained_species_run / "artifacts").table
    # A validation image of middling familiarity (any one image is beyond the threshold with
    # a 5% chance, by the threshold's construction).
    middle = table["familiarity"].sort_values().index[len(table) // 2]
    cartoon = Path(str(table.loc[middle, "path"]))
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at = _open(at, "views/try_photos.py")
    at.file_uploader(key="try_upload").set_value(
        [("person.jpg", person, "image/jpeg"), ("cartoon.png", cartoon.read_bytes(), "image/png")]
    ).run()
    assert not at.exception
    warnings = [w.value for w in at.warning]
    assert len(warnings) == 1 and "unlike the images this model was trained on" in warnings[0]
    familiarity = [c.value for c in at.caption if c.value.startswith("Familiarity:")]
    assert len(familiarity) == 2 and "(unfamiliar)" in familiarity[0]
    assert "(familiar ground)" in familiarity[1]
    assert [s.value for s in at.subheader][-1] == "Where your photos land"


def test_shortcuts_page_ranks_the_planted_mark_and_opens_its_images_and_slices(
    shortcut_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    (home / "demo").mkdir(parents=True)
    (home / "demo" / "breed").symlink_to(shortcut_run)
    monkeypatch.setenv("CAM_LENS_HOME", str(home))
    art = read_artifacts(shortcut_run / "artifacts")
    top = art.manifest.shortcuts.findings[0] if art.manifest.shortcuts else None
    assert top is not None
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params.update(
        {"page": "shortcuts", "analysis": str(shortcut_run / "artifacts"), "finding": "0"}
    )
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert [t.value for t in at.title] == ["Shortcuts"]
    ranking, _ = (frame.value for frame in at.dataframe)
    assert ranking.iloc[0]["class"] == "Bengal" and ranking.iloc[0]["verdict"] == "shortcut"
    assert any("planted a mark" in c.value for c in at.caption)
    assert any("not the animal" in e.value for e in at.error)
    at.button(key="sc_gallery").click().run()
    assert not at.exception
    assert _matched(at) == len(top.rows)
    # a weak slice opens as a filter that travels in the link
    at.switch_page("views/shortcuts.py").run()
    _, slices = (frame.value for frame in at.dataframe)
    at.button(key="sc_slice_gallery").click().run()
    feature, value = slices.iloc[0]["feature"], slices.iloc[0]["value"]
    expected = int((art.table[f"slice_{feature}"] == value).sum())
    assert _matched(at) == expected == int(slices.iloc[0]["n"])
    assert any(f"{feature} = {value}" in i.value for i in at.info)


def test_the_default_analysis_is_the_first_that_exists(
    imported_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no demo but other analyses, the sidebar opens one of those, not the missing demo."""
    monkeypatch.setenv("CAM_LENS_HOME", str(imported_home))
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    assert not at.exception
    chosen = Path(str(at.selectbox(key="shared_choice").value))
    assert chosen.parent.parent == imported_home / "imports"
    assert [t.value for t in at.title] == [PAGES["views/overview.py"]]
    assert not at.warning


def test_classes_outside_the_budget_say_so_and_offer_exact_cam(
    app: AppTest, quick_breed_run: Path
) -> None:
    art = read_artifacts(quick_breed_run / "artifacts")
    assert art.manifest.methods["gradcam"].classes_file  # six breeds, three maps per image
    app.selectbox(key="shared_choice").set_value(str(quick_breed_run / "artifacts")).run()
    app.selectbox(key="shared_method").set_value("gradcam").run()
    at = _open(app, "views/heatmaps.py")
    notes = [i.value for i in at.info if "No Grad-CAM map of" in i.value]
    assert len(at.get("plotly_chart")) == 3 and len(notes) == 3
    row = art.table.iloc[0]
    held = {art.manifest.classes[k] for k in art.map_classes["gradcam"][0]}
    assert {str(row["label"]), str(row["pred"])} <= held
    assert not any(f"**{name}**" in note for note in notes for name in held)
    missing = next(k for k, name in enumerate(art.manifest.classes) if name not in held)
    at.button(key=f"heat_cam_{missing}").click().run()
    assert at.selectbox(key="shared_method").value == "cam"
    assert len(at.get("plotly_chart")) == 7  # six classes + the difference map


def test_make_run_builds_the_stale_demo_once_in_the_background(
    quick_preset: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``make run`` names the tasks to build; the first page starts that build, every other
    session and reload sees the same job, and the task's pages open when it is done."""
    from cam_core.jobs import BackgroundJob
    from dashboard import training_panel

    job = BackgroundJob()
    monkeypatch.setattr(training_panel, "_DEMO_JOB", job)
    builds: list[tuple[str, ...]] = []
    real = training_panel._train

    def counted(progress: object, tasks: tuple[str, ...] = ()) -> object:
        builds.append(tuple(tasks))
        return real(progress, tasks)  # type: ignore[arg-type]

    monkeypatch.setattr(training_panel, "_train", counted)
    monkeypatch.setenv("CAM_LENS_BUILD_DEMO", " species  unknown ")
    first = AppTest.from_file(APP, default_timeout=300)
    first.run()
    assert not first.exception, [e.value for e in first.exception]
    assert job.status().state in {"running", "done"}
    second = AppTest.from_file(APP, default_timeout=300)  # another tab, at once
    second.run()
    assert not second.exception
    assert job.wait(300).state == "done"
    assert builds == [("species",)]
    assert (quick_preset / "demo" / "species" / "artifacts" / "manifest.json").exists()
    assert not (quick_preset / "demo" / "breed" / "artifacts").exists()
    first.run()  # a reload after the build
    assert builds == [("species",)]
    assert [t.value for t in first.title] == ["Overview"]
    assert any("Task: **species**" in c.value for c in first.sidebar.caption)


def test_every_page_works_for_a_vision_transformer(
    vit_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A DeiT analysed with --layer auto: every page without an error, rollout said to be
    class-agnostic, the layers view with the scores that chose the layer, photos explained."""
    monkeypatch.setenv("CAM_LENS_HOME", str(vit_home))
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    artifacts = vit_home / "imports" / "vit" / "artifacts"
    at.selectbox(key="shared_choice").set_value(str(artifacts)).run()
    for page, title in PAGES.items():
        at = _open(at, page)
        assert [t.value for t in at.title] == [title]
        assert not at.error, [e.value for e in at.error]
    assert "Attention rollout" in at.selectbox(key="shared_method").options
    at.selectbox(key="shared_method").set_value("rollout").run()
    assert any("same map for every class" in c.value for c in at.sidebar.caption)
    choice = read_artifacts(artifacts).manifest.layer_choice
    at = _open(at, "views/compare.py")
    at.segmented_control(key="cmp_view").set_value("Layers").run()
    assert not at.exception and not at.error
    text = " ".join(m.value for m in at.markdown)
    assert f"**Chosen layer:** `{choice.chosen}`" in text
    for score in choice.candidates:
        assert f"`{score.layer}` · 4×4 cells" in text
    assert text.count("deletion AUC") == len(choice.candidates)
    captions = [img.caption for element in at.get("image") for img in element.proto.imgs]
    for score in choice.candidates:
        assert any(
            c.endswith(f"at {score.layer}: cat") or c.endswith(f"at {score.layer}: dog")
            for c in captions
        )
    at = _open(at, "views/try_photos.py")
    at.file_uploader(key="try_upload").set_value([("photo.png", _png_bytes(), "image/png")]).run()
    assert not at.exception and not at.error


def test_the_layers_view_of_an_analysis_that_did_not_compare_layers(
    imported_app: AppTest,
) -> None:
    at = _open(imported_app, "views/compare.py")
    at.segmented_control(key="cmp_view").set_value("Layers").run()
    assert not at.exception and not at.error
    assert any("did not compare layers" in i.value for i in at.info)
    text = " ".join(m.value for m in at.markdown)
    assert "`body` ·" in text and "deletion AUC" not in text  # maps, but no scores
    assert text.count("cells") == 3  # body, the block before it, the last finer block


def test_the_summary_fits_a_meeting_and_links_to_the_pages_behind_it(
    app: AppTest, quick_run: Path
) -> None:
    from cam_core.present.summaries import largest_confusions

    table = read_artifacts(quick_run / "artifacts").table
    at = _open(app, "views/summary.py")
    assert [t.value for t in at.title] == ["Summary"] and not at.error
    metrics = {m.label: m.value for m in at.metric}
    accuracy = float(table["correct"].mean())
    assert metrics["Accuracy"] == f"{accuracy:.1%}"
    assert any(c.value.startswith("95% interval ") for c in at.caption)  # with its interval
    assert "Model error" in metrics and "Unreviewed errors" in metrics
    links = [p.proto.page for p in at.get("page_link")]
    # Each headline number (overview is the bare address), then the evidence and the review.
    assert links == ["", "misclassified", "quality", "embedding", "quality", "review"]
    confusions = largest_confusions(table, tuple(sorted(set(table["label"]))))
    if confusions:
        first = confusions[0]
        text = " ".join(m.value for m in at.markdown)
        assert f"**{first.true} → {first.pred}**: {first.count} images" in text
        at.button(key="sum_open_0").click().run()
        assert [t.value for t in at.title] == ["Gallery"]
        assert _matched(at) == first.count
