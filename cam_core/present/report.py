"""A single self-contained HTML report (no external files, no JavaScript) for stakeholders."""

from __future__ import annotations

import base64
import html
import logging
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from cam_core.analysis.artifacts import Artifacts, read_artifacts
from cam_core.analysis.reliance import reliance_of
from cam_core.errors import CamLensError, ReviewStoreError
from cam_core.evaluation.metrics import confusion_matrix, confusion_shares
from cam_core.intake.images import load_image_file, square_resize
from cam_core.methods import primary_method
from cam_core.modelling.model_files import ModelCard, read_card
from cam_core.present.display import (
    display_value,
    map_note,
    method_title,
    quality_note,
    region_words,
)
from cam_core.present.overlay import encode_png, overlay
from cam_core.present.summaries import (
    Headline,
    finding_headlines,
    headline_metrics,
    model_card_rows,
    stakeholder_summary,
)
from cam_core.present.tables import (
    DisplayTable,
    per_class_display,
    quality_display,
    shortcut_display,
    slices_display,
)
from cam_core.review.reviews import VERDICTS, load_reviews, reviews_table, verdict_counts
from cam_core.review.selection import errors
from cam_core.storage import atomic_write_text

__all__ = ["build_report", "write_report"]

log = logging.getLogger(__name__)

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;
max-width:1100px;color:#1d2433;padding:0 1rem}
h1{margin-bottom:.2rem}h2{border-bottom:2px solid #e3e8ef;padding-bottom:.3rem;margin-top:2rem}
.muted{color:#5b6577}table{border-collapse:collapse;margin:.5rem 0}
td,th{border:1px solid #d9dee7;padding:.35rem .7rem;text-align:left}
th{background:#f3f5f9}.num{text-align:right;font-variant-numeric:tabular-nums}
.cards{display:flex;gap:1rem;flex-wrap:wrap}.card{background:#f3f5f9;border-radius:8px;
padding:.8rem 1.2rem;min-width:140px}.card b{display:block;font-size:1.6rem}
.errors{display:grid;grid-template-columns:repeat(auto-fill,minmax(330px,1fr));gap:1rem}
.error{border:1px solid #d9dee7;border-radius:8px;padding:.6rem}
.error img{width:100px;height:100px;image-rendering:auto;border-radius:4px;margin-right:4px}
.cm td{text-align:center;min-width:70px}.wide{overflow-x:auto;max-width:100%}
"""


def _img_tag(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">'


def _table(frame: pd.DataFrame) -> str:
    """A plain table of texts (reviews)."""
    head = "".join(
        f"<th>{html.escape(str(c))}</th>" for c in [frame.index.name or "", *frame.columns]
    )
    # Column by column (not iterrows, which would turn integers into floats).
    columns = [frame[name].tolist() for name in frame.columns]
    rows = []
    for position, index in enumerate(frame.index):
        cells = "".join(f"<td>{html.escape(str(values[position]))}</td>" for values in columns)
        rows.append(f"<tr><th>{html.escape(str(index))}</th>{cells}</tr>")
    return f'<div class="wide"><table><tr>{head}</tr>{"".join(rows)}</table></div>'


def _display_html(display: DisplayTable) -> str:
    """A presentation table: the same headings and cell texts as on the dashboard."""
    head = f"<th>{html.escape(display.index_label)}</th>" + "".join(
        f'<th title="{html.escape(c.help)}">{html.escape(c.label)}</th>' for c in display.columns
    )
    text = display.text()
    rows = []
    for label, values in zip(text.index, text.to_numpy(), strict=True):
        cells = "".join(f'<td class="num">{html.escape(str(v))}</td>' for v in values)
        rows.append(f"<tr><th>{html.escape(str(label))}</th>{cells}</tr>")
    return f'<div class="wide"><table><tr>{head}</tr>{"".join(rows)}</table></div>'


def _confusion_html(matrix: pd.DataFrame) -> str:
    counts = matrix.to_numpy()
    share = confusion_shares(matrix)
    head = "".join(f"<th>pred {html.escape(str(c))}</th>" for c in matrix.columns)
    rows = []
    for i, name in enumerate(matrix.index):
        cells = []
        for j in range(counts.shape[1]):
            alpha = 0.1 + 0.8 * share[i, j]
            colour = "#fff" if share[i, j] > 0.55 else "#1d2433"
            cells.append(
                f'<td style="background:rgba(31,119,180,{alpha:.2f});color:{colour}">'
                f"{counts[i, j]}<br><small>{share[i, j]:.0%}</small></td>"
            )
        rows.append(f"<tr><th>true {html.escape(str(name))}</th>{''.join(cells)}</tr>")
    return f'<table class="cm"><tr><th></th>{head}</tr>{"".join(rows)}</table>'


def _card_html(card: ModelCard | None, model_dir: str) -> str:
    if card is None:
        return f'<p class="muted">Model folder {html.escape(model_dir)} is not available.</p>'
    body = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
        for k, v in model_card_rows(card).items()
    )
    return f"<table>{body}</table>"


def _quality_html(art: Artifacts) -> str:
    if not art.manifest.quality:
        return '<p class="muted">This analysis was run without the quality metrics.</p>'
    note = html.escape(quality_note(art.manifest.evaluation))
    return f'{_display_html(quality_display(art.manifest))}<p class="muted">{note}</p>'


def _cards_html(headlines: list[Headline]) -> str:
    cards = "".join(
        f'<div class="card" title="{html.escape(h.help)}">{html.escape(h.label)}'
        f"<b>{html.escape(h.value)}</b></div>"
        for h in headlines
    )
    return f'<div class="cards">{cards}</div>'


def _findings_html(art: Artifacts) -> str:
    headlines = finding_headlines(art.table, art.manifest)
    if not headlines:
        return (
            '<p class="muted">This analysis has no features (made before artifact format 3); '
            "re-running the analysis adds familiarity and near-duplicates.</p>"
        )
    notes = "".join(f"<li>{html.escape(h.label)}: {html.escape(h.help)}</li>" for h in headlines)
    return f'{_cards_html(headlines)}<ul class="muted">{notes}</ul>'


def _reliance_html(art: Artifacts, top: int = 5) -> str:
    try:
        reliance = reliance_of(art)
    except CamLensError as exc:
        return f'<p class="muted">{html.escape(str(exc))}</p>'
    search, parts = reliance.search, []
    if search.skipped:
        parts.append(f'<p class="muted">No shortcut search: {html.escape(search.skipped)}</p>')
    else:
        shortcuts = search.shortcuts
        summary = (
            "; ".join(
                f"<b>{html.escape(f.class_name)}</b> leans on the "
                f"{html.escape(region_words(f.box))}"
                for f in shortcuts
            )
            if shortcuts
            else "no candidate region is a shortcut"
        )
        parts.append(
            f"<p>{len(shortcuts)} shortcut(s) among {len(search.findings)} candidates: "
            f"{summary}.</p>{_display_html(shortcut_display(search, top))}"
        )
    if reliance.slices.empty:
        parts.append('<p class="muted">No slice is large enough to rank.</p>')
    else:
        parts.append(f"<h3>Weak slices</h3>{_display_html(slices_display(reliance.slices, top))}")
    return "".join(parts)


def _error_cards(art: Artifacts, top_n: int, colorscale: str, method: str) -> str:
    classes = list(art.manifest.classes)
    size = art.manifest.image_size
    placement = art.manifest.methods[method].placement
    worst = errors(art.table, "loss").head(top_n)
    if worst.empty:
        return "<p>No validation errors.</p>"
    cards = []
    for row_index, row in worst.iterrows():
        position = art.table.index.get_loc(row_index)
        caption = (
            f"true <b>{html.escape(str(row['label']))}</b>, predicted "
            f"<b>{html.escape(str(row['pred']))}</b> "
            f"({display_value('probability', row['confidence'])}), "
            f"loss {display_value('score', row['loss'])}"
        )
        try:
            view = square_resize(load_image_file(Path(str(row["path"]))), size)
        except CamLensError as exc:
            cards.append(
                f'<div class="error"><p>{caption}</p><p class="muted">'
                f"{html.escape(str(exc))}</p></div>"
            )
            continue
        maps = art.image_maps(method, position)
        images = [_img_tag(encode_png(view), "image")]
        for name in (row["pred"], row["label"]):
            k = classes.index(name)
            picture = overlay(view, maps[k], colorscale, placement=placement)
            images.append(_img_tag(encode_png(picture), f"map {name}"))
        cards.append(
            f'<div class="error">{"".join(images)}<p>{caption}<br><span class="muted">'
            f"image · map of predicted · map of true class — "
            f"{html.escape(Path(str(row['path'])).name)}</span></p></div>"
        )
    return f'<div class="errors">{"".join(cards)}</div>'


_SECTION_OF_PAGE = {
    "overview": "metrics",
    "misclassified": "errors",
    "quality": "quality",
    "embedding": "familiarity",
}
"""The report section behind each number of the summary (by the dashboard page's slug)."""


def _summary_html(
    art: Artifacts,
    card: ModelCard | None,
    verdicts: dict[str, int] | None,
    colorscale: str,
    method: str,
) -> str:
    """The stakeholder summary: the same content as the dashboard's Summary page."""
    content = stakeholder_summary(art, card, verdicts)
    numbers = "".join(
        f'<div class="card"><a href="#{_SECTION_OF_PAGE.get(n.page, "metrics")}">'
        f"<b>{html.escape(n.value)}</b></a>{html.escape(n.label)}"
        + (f" (95% interval {html.escape(n.interval)})" if n.interval else "")
        + f'<br><span class="muted">{html.escape(n.help)}</span></div>'
        for n in content.numbers
    )
    classes = list(art.manifest.classes)
    size = art.manifest.image_size
    placement = art.manifest.methods[method].placement
    record = art.manifest.methods[method]
    confusions = []
    for confusion in content.confusions:
        row = art.table.iloc[confusion.example_row]
        try:
            view = square_resize(load_image_file(Path(str(row["path"]))), size)
            picture = overlay(
                view,
                art.image_maps(method, confusion.example_row)[classes.index(confusion.pred)],
                colorscale,
                placement=placement,
            )
            image = _img_tag(encode_png(picture), f"map of {confusion.pred}")
        except CamLensError as exc:
            image = f'<p class="muted">{html.escape(str(exc))}</p>'
        confusions.append(
            f'<div class="error">{image}<p><a href="#confusions"><b>'
            f"{html.escape(confusion.true)} → {html.escape(confusion.pred)}</b>: "
            f"{confusion.count} images ({confusion.share:.1%} of "
            f'{html.escape(confusion.true)})</a><br><span class="muted">'
            f"{html.escape(record.title)}, map of {html.escape(confusion.pred)} on the worst "
            "of them</span></p></div>"
        )
    believe = (
        f"<p><b>None:</b> {html.escape(content.believe_why)}.</p>"
        if content.believe is None
        else f"<p><b>{html.escape(content.believe_why)}.</b></p>"
    )
    if content.verdicts is None:
        decided = '<p class="muted">The verdicts could not be read.</p>'
    else:
        decided = " · ".join(
            f'<a href="#reviews">{html.escape(verdict)}: {count:,}</a>'
            for verdict, count in content.verdicts.items()
        )
        decided = f"<p>{decided}</p>"
    return (
        f'<p class="muted">{html.escape(content.model_line)}</p>'
        f'<div class="cards">{numbers}</div>'
        f"<h3>Largest confusions</h3>"
        + (
            f'<div class="errors">{"".join(confusions)}</div>'
            if confusions
            else "<p>No errors.</p>"
        )
        + f"<h3>Which explanation to believe</h3>{believe}"
        + '<p><a href="#quality">The evidence</a></p>'
        + f"<h3>What the analysts decided</h3>{decided}"
    )


def _reviews_html(reviewed: pd.DataFrame | None) -> str:
    """Reviewed errors grouped by verdict, or why there are none."""
    if reviewed is None:
        return '<p class="muted">The review file could not be read (see the log).</p>'
    wrong = reviewed[reviewed["label"] != reviewed["pred"]]
    if wrong.empty:
        return '<p class="muted">No error has been reviewed yet.</p>'
    parts = []
    columns = [
        "path",
        "label",
        "pred",
        "confidence",
        "corrected_label",
        "tags",
        "note",
        "reviewer",
        "updated_at",
    ]
    for verdict in VERDICTS:
        rows = wrong[wrong["verdict"] == verdict]
        if rows.empty:
            continue
        shown = rows[columns].assign(path=rows["path"].map(lambda p: str(p).rsplit("/", 1)[-1]))
        parts.append(f"<h3>{html.escape(verdict)} ({len(rows)})</h3>{_table(shown)}")
    return "".join(parts)


def build_report(
    art: Artifacts,
    card: ModelCard | None,
    top_n: int = 12,
    colorscale: str = "Jet",
    method: str | None = None,
    reviewed: pd.DataFrame | None = None,
    verdicts: dict[str, int] | None = None,
) -> str:
    """The report as one HTML string (images inlined as base64 PNG); its first section is the
    stakeholder summary (the dashboard's Summary page), every number linking to its section.

    Args:
        art: a verified artifact folder.
        card: the model card, or ``None`` when the model folder is gone.
        top_n: errors shown.
        colorscale: overlay colours.
        method: whose maps the error cards show (default: the analysis's primary method,
            :func:`cam_core.methods.primary_method`).
        reviewed: the analysts' verdicts (:func:`cam_core.review.reviews.reviews_table`); ``None``
            when the review file could not be read.
        verdicts: their counts (:func:`cam_core.review.reviews.verdict_counts`); ``None`` when
            the review file could not be read.
    """
    manifest = art.manifest
    shown = method or primary_method(manifest.method_names)
    art.maps_of(shown)  # an analysis without that method's maps is refused here
    record = manifest.methods[shown]
    map_text = html.escape(map_note(record))
    for name, reason in manifest.unavailable.items():
        title = method_title(name, manifest.methods)
        map_text += f" {html.escape(title)} is not offered for this model: {html.escape(reason)}."
    cards = _cards_html(headline_metrics(art.table, shown))
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>CAM Lens report</title>
<style>{_STYLE}</style></head><body>
<h1>CAM Lens report</h1>
<p class="muted">Generated {now} from {html.escape(str(art.folder))}
(analysis of {html.escape(art.manifest.created_at)}).</p>
<h2 id="summary">Summary</h2>{_summary_html(art, card, verdicts, colorscale, shown)}
<h2 id="model">Model</h2>{_card_html(card, art.manifest.model_dir)}
<h2 id="metrics">Validation metrics</h2>{cards}
<h3>Per class</h3>{_display_html(per_class_display(art.table, manifest.classes))}
<h3 id="confusions">Confusion matrix</h3>
{_confusion_html(confusion_matrix(art.table, manifest.classes))}
<h2 id="quality">Explanation quality</h2>{_quality_html(art)}
<h2 id="familiarity">Where the model is on unfamiliar ground</h2>{_findings_html(art)}
<h2>What the model relies on</h2>{_reliance_html(art)}
<h2 id="errors">Top {top_n} errors by loss</h2>
<p class="muted">Maps of {html.escape(record.title)}: red is where the evidence
for that class is strongest. {map_text}</p>
{_error_cards(art, top_n, colorscale, shown)}
<h2 id="reviews">Reviewed errors by verdict</h2>{_reviews_html(reviewed)}
</body></html>
"""


def write_report(
    artifacts_dir: Path,
    out: Path,
    top_n: int = 12,
    colorscale: str = "Jet",
    method: str | None = None,
) -> Path:
    """Build the report for an artifact folder and write it atomically to ``out``.

    Raises:
        ArtifactError: the artifact folder is missing or inconsistent, or lacks ``method``.
    """
    art = read_artifacts(artifacts_dir)
    try:
        card: ModelCard | None = read_card(Path(art.manifest.model_dir))
    except CamLensError as exc:
        log.warning("model card unavailable: %s", exc)
        card = None
    try:
        reviews = load_reviews(artifacts_dir, art.manifest.model_sha256)
        reviewed: pd.DataFrame | None = reviews_table(art.table, reviews)
    except ReviewStoreError as exc:
        log.warning("reviews unavailable: %s", exc)
        reviewed = None
    out.parent.mkdir(parents=True, exist_ok=True)
    counts = verdict_counts(art.table, reviews) if reviewed is not None else None
    atomic_write_text(out, build_report(art, card, top_n, colorscale, method, reviewed, counts))
    log.info("wrote report %s", out)
    return out
