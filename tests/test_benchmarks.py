"""The benchmark scripts run end to end and print machine-readable results (no timing asserts)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _run(script: str, *args: str) -> dict:  # type: ignore[type-arg]
    """Run a benchmark script with ``--json``; its JSON object."""
    result = subprocess.run(
        [sys.executable, f"benchmarks/{script}", *args, "--json"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_bench_cam_json_has_plain_keys_and_a_targets_object(tmp_path: Path) -> None:
    summary = _run(
        "bench_cam.py",
        *("--n", "4", "--size", "32", "--batch", "2", "--reps", "1", "--tutorial-n", "1"),
        *("--method-n", "2", "--costly-n", "1", "--device", "cpu"),
        *("--out", str(tmp_path / "RESULTS.md")),
    )
    assert set(summary["ratios"]) == {
        "ours_vs_plain",
        "tutorial_vs_ours",
        "gradcam_vs_ours",
        "bf16_speedup_vs_plain_fp32",
    }
    assert summary["ratios"]["bf16_speedup_vs_plain_fp32"] > 0
    assert 0 <= summary["bf16_argmax_agreement_first_batch"] <= 1
    assert set(summary["targets"]) == {*summary["ratios"], "upload_latency_s"}
    assert summary["upload_latency_s"] > 0
    assert set(summary["method_images_per_s"]) == {
        "cam",
        "gradcam",
        "gradcampp",
        "scorecam",
        "layercam",
    }
    assert all(value > 0 for value in summary["method_images_per_s"].values())
    assert not any("(" in key for key in summary)
    assert "| method scorecam: every class, batch of 1 |" in (tmp_path / "RESULTS.md").read_text()


def test_bench_analysis_times_every_stage_against_plain_inference(tmp_path: Path) -> None:
    out = tmp_path / "RESULTS.md"
    out.write_text("<!-- other -->\nkept\n<!-- /other -->\n")
    summary = _run(
        "bench_analysis.py",
        *("--n", "6", "--classes", "3", "--size", "64", "--arch", "resnet18", "--reps", "1"),
        *("--device", "cpu", "--out", str(out)),
    )
    assert summary["methods"] == ["cam", "gradcam", "gradcampp", "layercam"]
    assert summary["classes_per_image"] == 3 and summary["classes"] == 3
    stages = summary["stages_s"]
    assert {"maps: Grad-CAM", "deletion/insertion", "sanity check"} <= set(stages)
    ratio = summary["analysis_s"] / summary["plain_inference_s"]
    assert abs(summary["ratio"] - ratio) <= 0.05 * ratio  # both times are rounded
    assert summary["analysis_s"] >= sum(stages.values()) * 0.9
    text = out.read_text()
    assert "kept" in text and "| **ratio** |" in text and "<!-- bench_analysis -->" in text


def test_bench_dashboard_times_every_page_and_keeps_other_sections(tmp_path: Path) -> None:
    results = tmp_path / "RESULTS.md"
    results.write_text("<!-- cam -->\ncam figures\n<!-- /cam -->\n")
    summary = _run(
        "bench_dashboard.py",
        *("--n", "120", "--classes", "8", "--side", "4", "--reps", "1", "--out", str(results)),
    )
    assert len(summary["pages"]) == 11  # ten pages and the first load
    assert summary["embedding_s"] > 0 and 0 < summary["upload_familiarity_ms"] < 10_000
    assert all(entry["first_visit_s"] > 0 for entry in summary["pages"].values())
    assert summary["rss_mb"] > 0 and summary["first_load_s"] > 0
    text = results.read_text()
    assert "cam figures" in text and "| views/gallery.py |" in text
    assert text.count("<!-- dashboard -->") == 1


def _spread(value: float) -> dict[str, float]:
    return {"mean": value, "min": value, "max": value}


def test_quality_renders_a_saved_result_without_training(tmp_path: Path) -> None:
    cam = {"pointing_game": 0.9, "deletion_auc": 0.3, "insertion_auc": 0.95}
    saved = {
        "date": "2026-11-27T00:00:00+00:00",
        "machine": "test machine",
        "n_seeds": 2,
        "runs": [
            {
                "task": "breed",
                "seed": seed,
                "accuracy": 0.99,
                "seconds": 90.0,
                "quality": {"cam": cam},
            }
            for seed in (42, 3)
        ],
        "summary": {
            "breed": {"accuracy": _spread(0.99), "cam": {m: _spread(v) for m, v in cam.items()}}
        },
    }
    (tmp_path / "saved.json").write_text(json.dumps(saved))
    out = tmp_path / "QUALITY.md"
    args = ["benchmarks/quality.py", "--render", str(tmp_path / "saved.json"), "--out", str(out)]
    done = subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    text = out.read_text()
    assert "- machine: test machine" in text and "- tuned on: " in text
    assert "| breed | 42 | 99.00% | 90.00% | 0.300 | 0.950 | 90 |" in text
    assert "| cam | 0.900 [0.900, 0.900] | 0.300 [0.300, 0.300] | 0.950 [0.950, 0.950] |" in text
    (tmp_path / "saved.json").write_text("{")
    broken = subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True)
    assert broken.returncode != 0
    assert (
        broken.stderr.strip().startswith("error: cannot render")
        and "Traceback" not in broken.stderr
    )
    assert out.read_text() == text  # the last good file stays
