"""Mutation testing of the core modules (``make mutate``), each against its own test files.

For every module below, mutmut plants small bugs (an operator flipped, a constant changed, an
argument dropped, ...) one at a time and runs the tests of that module that execute the mutated
function; a mutant is *killed* when a test fails. Each module runs in its own copy of the
project under ``.mutants/<module>/`` so that only its own test files count, with
``make test-fast``'s selection (no ``slow`` tests) and session fixtures built once per module
(``CAM_LENS_FIXTURE_CACHE``). The scores go into ``tests/MUTATION.md``; surviving mutants with
their diffs into ``.mutants/<module>/survivors.md``.

Usage: ``python tests/mutate.py [--jobs N] [NAME ...]`` (NAME: part of a module path, e.g.
``calibration`` or ``evaluation/``; none = every module).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".mutants"
REPORT = ROOT / "tests" / "MUTATION.md"
MUTMUT = [sys.executable, "-m", "mutmut"]
TARGET_SCORE = 0.85

# module -> its own test files
TARGETS: dict[str, tuple[str, ...]] = {
    "cam_core/evaluation/baselines.py": ("tests/test_baselines.py",),
    "cam_core/evaluation/duplicates.py": ("tests/test_duplicates.py",),
    "cam_core/evaluation/faithfulness.py": ("tests/test_faithfulness.py",),
    "cam_core/evaluation/familiarity.py": ("tests/test_familiarity.py",),
    "cam_core/evaluation/layers.py": ("tests/test_layers.py",),
    "cam_core/evaluation/localisation.py": ("tests/test_localisation.py",),
    "cam_core/evaluation/metrics.py": ("tests/test_metrics.py",),
    "cam_core/evaluation/sanity.py": ("tests/test_sanity.py",),
    "cam_core/evaluation/shortcuts.py": ("tests/test_shortcuts.py",),
    "cam_core/evaluation/slices.py": ("tests/test_slices.py",),
    "cam_core/evaluation/suite.py": ("tests/test_suite.py",),
    "cam_core/review/calibration.py": ("tests/test_calibration.py",),
    "cam_core/review/label_issues.py": ("tests/test_label_issues.py",),
    "cam_core/review/reviews.py": ("tests/test_reviews.py",),
    "cam_core/present/summaries.py": ("tests/test_summaries.py",),
    "cam_core/intake/fetch.py": ("tests/test_fetch.py",),
    "cam_core/intake/images.py": ("tests/test_images.py",),
    "cam_core/modelling/importing.py": ("tests/test_importing.py",),
    "cam_core/modelling/architectures.py": (
        "tests/test_architectures.py",
        "tests/test_importing.py",
        "tests/test_models.py",
    ),
    "cam_core/modelling/precision.py": ("tests/test_precision.py",),
    "cam_core/analysis/distributed.py": ("tests/test_distributed.py",),
    "cam_core/analysis/artifacts.py": ("tests/test_artifacts.py",),
    "cam_core/analysis/cams.py": ("tests/test_cams.py",),
    "cam_core/methods/tokens.py": ("tests/test_tokens.py",),
    "cam_core/methods/rollout.py": ("tests/test_rollout.py",),
    "cam_core/storage.py": ("tests/test_storage.py",),
}

# Tests of a module's files left out of its mutation run: they run the whole analysis pipeline
# (12-14 s each) and reach the module only through the calls the quicker tests make too (the
# fastai import test stays: only it reaches the fastai paths).
WHOLE_PIPELINE = "not analysing_a_folder_with_an_imported_model and not cli_import_analyze_predict"
DESELECTED: dict[str, str] = {
    "cam_core/modelling/importing.py": WHOLE_PIPELINE,
    "cam_core/modelling/architectures.py": WHOLE_PIPELINE,
}

# Wording is not behaviour: the text of error messages, warnings and log lines, and prose on a
# line of its own (help texts, message continuations: a string holding two lower-case words),
# is not mutated; tests check the error class and the names a message must contain, not every
# word. SQL and names (no two lower-case words in a row) are still mutated.
MESSAGE_LINES = [
    r"^\s*raise \w",
    r"\b(log|logger|_log|LOG)\.(debug|info|warning|error|exception)\(",
    r"\bwarnings\.warn\(",
    r'^\s*[rbf]*"[^"]*[a-z]{2,} [a-z]{2,}[^"]*"\s*[,)+]*\s*$',
]

# mutmut's exit codes, grouped as this report counts them.
KILLED = {1, 3, 24, -24, 36, 152, 255, 37}
SURVIVED = {0}
NOT_RUN = {33, 5}  # no test of this module executes the mutated function


@dataclass(frozen=True)
class Score:
    module: str
    total: int
    killed: int
    survived: list[str]
    untested: list[str]
    equivalent: int

    @property
    def score(self) -> float:
        """Killed mutants over all but those listed as equivalent."""
        counted = self.total - self.equivalent
        return self.killed / counted if counted else 1.0


def equivalents() -> dict[str, str]:
    """Mutant name -> reason, from the "Equivalent mutants" list of ``tests/MUTATION.md``."""
    if not REPORT.exists():
        return {}
    found = re.findall(r"^- `([\w.]+__mutmut_\d+)`: (.+)$", REPORT.read_text(), re.M)
    return dict(found)


def _work(module: str) -> Path:
    """The module's own copy of the project."""
    return WORK / Path(module).stem


def _meta(module: str) -> Path:
    """mutmut's results of the module's last run."""
    return _work(module) / "mutants" / (module + ".meta")


def prepare(module: str, tests: tuple[str, ...]) -> Path:
    """A fresh copy of the project for one module, configured for mutmut."""
    work = _work(module)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "screenshots")
    for folder in ("cam_core", "tests"):
        shutil.copytree(ROOT / folder, work / folder, ignore=ignore)
    config = {
        "source_paths": ["cam_core"],
        "only_mutate": [module],
        "pytest_add_cli_args_test_selection": list(tests),
        "pytest_add_cli_args": [
            "-m",
            "not slow",
            *(["-k", DESELECTED[module]] if module in DESELECTED else []),
            "-p",
            "no:cacheprovider",
            "-o",
            "addopts=",
        ],
        "do_not_mutate_patterns": MESSAGE_LINES,
        # torch is not fork-safe once it has run: fork workers from a process that never ran it.
        "process_isolation": "forkserver",
        # a mutant stuck in a loop is a kill; give up on it at 5x its tests' usual time
        "timeout_multiplier": 5.0,
    }
    lines = [f"{key} = {json.dumps(value)}" for key, value in config.items()]
    text = (ROOT / "pyproject.toml").read_text()
    (work / "pyproject.toml").write_text(text + "\n[tool.mutmut]\n" + "\n".join(lines) + "\n")
    return work


def run(module: str, tests: tuple[str, ...], jobs: int) -> Score:
    """Mutation-test one module; write its survivors' diffs next to its run log."""
    work = prepare(module, tests)
    env = dict(os.environ, CAM_LENS_FIXTURE_CACHE=str(work / "fixtures"), PYTHONHASHSEED="0")
    with open(work / "run.log", "w") as log:
        done = subprocess.run(
            [*MUTMUT, "run", "--max-children", str(jobs)], cwd=work, env=env, stdout=log, stderr=log
        )
    if done.returncode != 0 or not _meta(module).exists():
        raise SystemExit(f"mutmut failed on {module}: see {work / 'run.log'}")
    score = score_of(module)
    with open(work / "survivors.md", "w") as out:
        for name in score.survived + score.untested:
            shown = subprocess.run(
                [*MUTMUT, "show", name], cwd=work, env=env, capture_output=True, text=True
            )
            out.write(f"## {name}\n```diff\n{shown.stdout.strip()}\n```\n\n")
    return score


def score_of(module: str) -> Score:
    """The score of a module's last run, counting the equivalent mutants listed today."""
    codes: dict[str, int | None] = json.loads(_meta(module).read_text())["exit_code_by_key"]
    known = equivalents()
    survived = sorted(name for name, code in codes.items() if code in SURVIVED)
    untested = sorted(name for name, code in codes.items() if code in NOT_RUN)
    return Score(
        module=module,
        total=len(codes),
        killed=sum(code in KILLED for code in codes.values()),
        survived=survived,
        untested=untested,
        equivalent=sum(name in known for name in survived + untested),
    )


def write_report(scores: list[Score], keep_dates: bool = False) -> None:
    """Update the score table of ``tests/MUTATION.md`` for the modules just run (or rescored:
    ``keep_dates`` keeps the date of their run)."""
    text = REPORT.read_text()
    start, end = "<!-- scores -->\n", "<!-- /scores -->\n"
    head, rest = text.split(start)
    table, tail = rest.split(end)
    rows = {line.split("|")[1].strip(" `"): line for line in table.splitlines()[2:] if line}
    today = date.today().isoformat()
    for s in scores:
        when = rows[s.module].split("|")[7].strip() if keep_dates and s.module in rows else today
        rows[s.module] = (
            f"| `{s.module}` | {s.total} | {s.killed} | {len(s.survived) + len(s.untested)} "
            f"| {s.equivalent} | {s.score:.1%} | {when} |"
        )
    header = (
        "| module | mutants | killed | not killed | of which equivalent | score | run |\n"
        "|---|---:|---:|---:|---:|---:|---|\n"
    )
    body = "".join(rows[m] + "\n" for m in sorted(rows))
    REPORT.write_text(head + start + header + body + end + tail)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="parts of module paths (default: every module)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    parser.add_argument(
        "--report", action="store_true", help="rescore the last runs (after listing equivalents)"
    )
    args = parser.parse_args()
    # in the order asked for (e.g. quick modules first), each module once
    chosen = list(TARGETS) if not args.names else []
    for name in args.names:
        chosen += [m for m in TARGETS if name in m and m not in chosen]
    if not chosen:
        print(f"no module matches {' '.join(args.names)}; modules: {', '.join(TARGETS)}")
        return 2
    if args.report:
        done = [m for m in chosen if _meta(m).exists()]
        rescored = [score_of(m) for m in done]
        write_report(rescored, keep_dates=True)
        for s in rescored:
            print(f"{s.module}: {s.score:.1%} ({s.equivalent} equivalent)")
        return 0
    scores = []
    for module in chosen:
        started = time.monotonic()
        score = run(module, TARGETS[module], args.jobs)
        scores.append(score)
        write_report(scores)
        print(
            f"{module}: {score.killed}/{score.total} killed, {score.equivalent} equivalent, "
            f"score {score.score:.1%} ({time.monotonic() - started:.0f} s)",
            flush=True,
        )
    below = [s.module for s in scores if s.score < TARGET_SCORE]
    if below:
        print(f"below {TARGET_SCORE:.0%}: {', '.join(below)} (survivors: .mutants/<module>/)")
    return 1 if below else 0


if __name__ == "__main__":
    sys.exit(main())
