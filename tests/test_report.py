from __future__ import annotations

import re
from pathlib import Path

from cam_core.analysis.artifacts import read_artifacts
from cam_core.cli import main


def test_cli_report_is_one_self_contained_file(quick_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    assert (
        main(
            [
                "-q",
                "report",
                "--artifacts",
                str(quick_run / "artifacts"),
                "--out",
                str(out),
                "--top",
                "3",
            ]
        )
        == 0
    )
    html = out.read_text()
    table = read_artifacts(quick_run / "artifacts").table
    assert "CAM Lens report" in html and "democnn" in html
    assert f"<b>{table['correct'].mean():.1%}</b>" in html  # the accuracy card
    n_errors = min(3, int((~table["correct"]).sum()))
    wrong = table[~table["correct"]]
    n_confusions = min(3, len(wrong.groupby(["label", "pred"])))
    # The summary: one map per confusion; the errors: image + predicted + true-class map each.
    assert len(re.findall(r'<img src="data:image/png;base64,', html)) == (
        n_confusions + 3 * n_errors
    )
    summary = html[html.index('<h2 id="summary">') : html.index('<h2 id="model">')]
    assert "Which explanation to believe" in summary and 'href="#quality"' in summary
    assert 'href="#metrics"><b>' in summary and "What the analysts decided" in summary
    assert "Accuracy (95% interval " in summary
    assert not re.search(r'(src|href)="(http|/|\.\./)', html)
    assert "<script" not in html


def test_report_of_a_missing_folder_is_an_error_line(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert (
        main(["report", "--artifacts", str(tmp_path / "none"), "--out", str(tmp_path / "r.html")])
        == 2
    )
    assert "error: artifact folder" in capsys.readouterr().err
    assert not (tmp_path / "r.html").exists()


def test_report_has_the_quality_table_and_the_chosen_maps(quick_run: Path) -> None:
    from cam_core.modelling.model_files import read_card
    from cam_core.present.display import method_title
    from cam_core.present.report import build_report

    art = read_artifacts(quick_run / "artifacts")
    html = build_report(art, read_card(quick_run / "model"), top_n=2, method="gradcampp")
    assert '<h2 id="quality">Explanation quality</h2>' in html
    for name in (*art.manifest.methods, "random", "centre"):
        assert f"<th>{method_title(name, art.manifest.methods)}</th>" in html
    assert "Maps of Grad-CAM++" in html and "min-max scaled per image" in html
    cam_html = build_report(art, None, top_n=2)
    assert "Maps of CAM (exact)" in cam_html and "mean equals the class logit" in cam_html


def test_report_lists_reviewed_errors_by_verdict(quick_run: Path, tmp_path: Path) -> None:
    import shutil

    from cam_core.present.report import write_report
    from cam_core.review.reviews import REVIEWS_FILE, ReviewStore

    folder = tmp_path / "artifacts"
    shutil.copytree(quick_run / "artifacts", folder)
    (folder / REVIEWS_FILE).unlink(missing_ok=True)
    art = read_artifacts(folder)
    out = tmp_path / "before.html"
    write_report(folder, out)
    assert "No error has been reviewed yet." in out.read_text()
    wrong = art.table[~art.table["correct"]]
    store = ReviewStore.beside(folder, art.manifest.model_sha256)
    first, second = (str(p) for p in wrong["path"].iloc[:2])
    store.save(first, "label error", "ana", corrected_label="dog", note="ears of a dog")
    store.save(second, "ambiguous", "ben")
    write_report(folder, out)
    text = out.read_text()
    assert "<h3>label error (1)</h3>" in text and "<h3>ambiguous (1)</h3>" in text
    assert first.rsplit("/", 1)[-1] in text and "ears of a dog" in text
    assert text.index("label error (1)") < text.index("ambiguous (1)")
