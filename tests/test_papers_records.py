"""The committed report is what the current code decides from the committed run records.

docs/reproductions.md is rendered from docs/reproductions-records.json.gz (per run: spec
hash, resolved spec, metric history, summary). This test re-decides every verdict from those
records with the current code and fails when the committed markdown differs: a changed rule,
threshold or spec shows up here, not silently in a stale report. Regenerate with
``grokspec report specs/papers/ --from-records docs/reproductions-records.json.gz``.
"""

from __future__ import annotations

import gzip
from pathlib import Path

from grokspec.papers import records as rec_io
from grokspec.papers.markdown import markdown
from grokspec.papers.registry import claim
from grokspec.papers.report import from_records, spec_files

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "reproductions.md"
RECORDS = ROOT / "docs" / "reproductions-records.json.gz"


def test_committed_report_is_decided_from_the_committed_records() -> None:
    data = rec_io.load(RECORDS)
    results = [from_records(claim(f.stem), f, RECORDS, data)
               for f in spec_files([str(ROOT / "specs" / "papers")])]
    expected = markdown(results, OUT, RECORDS)
    assert OUT.read_text() == expected, (
        "docs/reproductions.md is stale: regenerate it with `grokspec report specs/papers/ "
        "--from-records docs/reproductions-records.json.gz`")


def test_records_file_is_small_and_written_deterministically(tmp_path: Path) -> None:
    assert RECORDS.stat().st_size < 5_000_000
    data = rec_io.load(RECORDS)
    again = tmp_path / "r.json.gz"
    rec_io.save(again, data["papers"])
    assert again.read_bytes() == RECORDS.read_bytes()
    assert gzip.decompress(again.read_bytes()).startswith(b'{"format":"grokspec-records/1"')
