"""The seed-paper specs (specs/papers/), their runs and `grokspec report`.

Default run: every paper spec (and its paper-scale variant) validates, has a claim, and runs
end to end at a tiny size through MLflow -> records -> verdict; the report command writes the
markdown and the records file, re-decides from records, and rejects bad input with one line
and exit 2. The verdicts at tiny size mean nothing and are not asserted (the controls in
tests/test_papers_controls.py show that each rule can fail and can pass).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from grokspec.papers import records as rec_io
from grokspec.papers.registry import PAPERS, claims
from grokspec.papers.report import collect, decide, spec_files
from grokspec.spec.loading import load_spec
from grokspec.sweep.expand import has_sweep, load_sweep

ROOT = Path(__file__).resolve().parent.parent
PAPERS_DIR = ROOT / "specs" / "papers"
FILES = sorted(PAPERS_DIR.glob("*.yaml"))
PAPER_SCALE = sorted((PAPERS_DIR / "paper-scale").glob("*.yaml"))

#: Tiny versions: few steps, few sweep points. Overrides, as `--set` takes them.
TINY: dict[str, list[str]] = {
    "lee2024": ["train.steps=20", "train.eval_every=10", "dataset.p=13", "learner.d_model=32",
                "learner.d_mlp=64", "sweep.seeds=[0]", "train.batch_size=32",
                "sweep.variants.baseline.train.steps=20"],  # the variant sets its own budget
    "power2022": ["train.steps=20", "train.eval_every=10", "dataset.p=13", "learner.d_model=32",
                  "learner.d_mlp=64", "sweep.seeds=[0]", "train.batch_size=32"],
    "liu2022": [
        "train.steps=20", "train.eval_every=10", "sweep.seeds=[0]",
        "sweep.grid={train.optimizer.lr: [1.0e-3], train.optimizer.weight_decay: [1.0]}",
    ],
    "kumar2024": ["train.steps=20", "train.eval_every=10",
                  "sweep.grid={learner.output_scale: [2.0]}", "sweep.seeds=[0]",
                  "dataset.n_examples=300", "dataset.train_size=100"],
    "carvalho2025": ["train.steps=20", "train.eval_every=10", "sweep.seeds=[0]"],
    "miller2023": [
        "train.steps=10", "dataset.n_examples=100", "dataset.train_size=40",
        "learner.inducing_points=40", "sweep.variants.bnn_n40.train.steps=10",
        "sweep.variants.bnn_n40.train.eval_every=5",
        "sweep.variants.bnn_n40.dataset={n_bits: 40, n_examples: 100, train_size: 40}",
        "sweep.variants.bnn_n40.learner.width=32", "sweep.variants.bnn_n40.learner.samples=2",
    ],
    "fan2024": ["train.steps=20", "train.eval_every=10", "learner.width=32", "sweep.seeds=[0]"],
    "huang2024": ["train.steps=20", "train.eval_every=10", "sweep.grid={learner.width: [8]}",
                  "sweep.seeds=[0]"],
    "nanda2023": ["train.steps=20", "train.eval_every=10", "dataset.p=13", "learner.d_model=32",
                  "learner.d_mlp=64", "sweep.seeds=[0]"],
    "li2025": ["train.steps=20", "train.eval_every=10", "dataset.p=13", "learner.d_model=32",
               "sweep.seeds=[0]"],
}


@pytest.mark.parametrize("name", sorted(TINY))
def test_tiny_size_is_tiny_at_every_point(name: str) -> None:
    """The smoke runs stay seconds long: a variant that sets its own step budget (lee2024's
    censored baseline, 20000 steps) is not shrunk by ``--set train.steps``, and once made
    the default test run 150 s longer."""
    from grokspec.papers.report import targets

    tgts, _ = targets(PAPERS_DIR / f"{name}.yaml", TINY[name])
    assert tgts and max(t.experiment.train.steps for t in tgts) <= 20


def _points(path: Path, overrides: list[str]) -> int:
    if has_sweep(path, overrides):
        return len(load_sweep(path, overrides).points)
    load_spec(path, overrides)
    return 1


def test_every_paper_has_a_spec_a_claim_a_tiny_and_a_paper_size() -> None:
    stems = {f.stem for f in FILES}
    assert stems == set(PAPERS) == set(TINY) == set(claims())
    assert {f.stem for f in PAPER_SCALE} == stems
    assert [f.stem for f in spec_files([str(PAPERS_DIR)])] == list(PAPERS)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_paper_spec_validates_at_default_tiny_and_paper_size(path: Path) -> None:
    assert _points(path, []) >= 1
    assert _points(path, TINY[path.stem]) >= 1
    assert _points(PAPERS_DIR / "paper-scale" / path.name, []) >= 1
    header = path.read_text().split("\nname:")[0]
    assert "paper's setting" in header or "The paper's" in header, "header states the setting"
    assert "paper-scale" in header or "paper scale" in header.lower()


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_paper_runs_at_tiny_size_through_records(path: Path, mlflow_uri: str) -> None:
    claim = claims()[path.stem]
    recs, ran = collect(path, TINY[path.stem], echo=lambda m: None)
    assert ran and recs
    assert all(r.status == "FINISHED" and r.history for r in recs)
    # Records round-trip: what the report decides from is what MLflow had (7 digits).
    data = [rec_io.encode(r) for r in recs]
    back = [rec_io.decode(d, r.experiment) for d, r in zip(data, recs, strict=True)]
    assert [len(b.history) for b in back] == [len(r.history) for r in recs]
    res = decide(claim, path, back, len(recs))
    assert res.verdict.label in ("reproduced", "partly", "not reproduced", "no data")
    # A second collect reads the same runs back from MLflow by spec hash instead of rerunning.
    again, ran = collect(path, TINY[path.stem], echo=lambda m: None)
    assert not ran and {r.run_id for r in again} == {r.run_id for r in recs}


def test_report_command_writes_records_and_regenerates_from_them(
    mlflow_uri: str, capsys: pytest.CaptureFixture
) -> None:
    from grokspec.cli.main import main

    tiny = [f"--set={o}" for o in TINY["carvalho2025"]]
    rc = main(["report", str(PAPERS_DIR / "carvalho2025.yaml"), "--out", "rep/r.md", *tiny])
    assert rc == 0, capsys.readouterr().err
    text = Path("rep/r.md").read_text()
    assert "| [carvalho2025](#carvalho2025) |" in text
    assert Path("rep/figures/carvalho2025.png").stat().st_size > 1000
    data = rec_io.load(Path("rep/r-records.json.gz"))
    assert len(data["papers"]["carvalho2025"]["runs"]) == 2
    # --from-records decides again without MLflow and writes the same markdown.
    rc = main(["report", str(PAPERS_DIR / "carvalho2025.yaml"), "--out", "rep/r2.md",
               "--from-records", "rep/r-records.json.gz", "--no-figures", *tiny])
    assert rc == 0
    assert Path("rep/r2.md").read_text().replace("r-records", "X") == text.replace(
        "r-records", "X")
    # --read-only with nothing in MLflow: the paper is "not run", nothing runs.
    rc = main(["report", str(PAPERS_DIR / "huang2024.yaml"), "--out", "rep/r3.md",
               "--read-only", "--no-figures"])
    assert rc == 0 and "**not run**" in Path("rep/r3.md").read_text()


def test_report_keeps_collected_records_and_runs_only_what_is_missing(
    mlflow_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A paper collected earlier (records file, MLflow store gone: a fresh clone, another
    machine) is not trained again; a point whose training changed is."""
    path = PAPERS_DIR / "carvalho2025.yaml"
    tiny = TINY["carvalho2025"]
    first, ran = collect(path, tiny, echo=lambda m: None)
    assert ran and len(first) == 2
    saved = [rec_io.encode(r) for r in first]
    notes: list[str] = []
    kept, ran = collect(path, [*tiny, f"tracking.uri=sqlite:///{tmp_path / 'empty.db'}"],
                        echo=notes.append, saved=saved)
    assert not ran and [r.run_id for r in kept] == [r.run_id for r in first]
    assert kept[0].history == rec_io.decode(saved[0], first[0].experiment).history
    assert any("2 point(s) kept" in n for n in notes)
    changed, ran = collect(path, [*tiny, "train.steps=30",
                                  f"tracking.uri=sqlite:///{tmp_path / 'empty2.db'}"],
                           echo=lambda m: None, saved=saved)
    assert ran and {r.run_id for r in changed}.isdisjoint({r.run_id for r in first})


def _one_line_exit_2(argv: list[str], capsys: pytest.CaptureFixture, *needles: str) -> None:
    from grokspec.cli.main import main

    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for n in needles:
        assert n in err, err


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    kumar = str(PAPERS_DIR / "kumar2024.yaml")
    # An unknown claim rule.
    _one_line_exit_2(["report", kumar, "--only", "kumar2042"], capsys, "kumar2042", "kumar2024")
    odd = tmp_path / "smith2099.yaml"
    odd.write_text((PAPERS_DIR / "lee2024.yaml").read_text())
    _one_line_exit_2(["report", str(odd), "--from-records", "x.json.gz"], capsys,
                     "smith2099.yaml", "unknown claim rule")
    # A trend over too few points (a negative-control spec with 2 alphas), before any run.
    _one_line_exit_2(["report", kumar, "--set", "sweep.grid={learner.output_scale: [1, 2]}"],
                     capsys, "kumar2024.yaml", "sweep.grid.learner.output_scale", ">= 4")
    # A records file that is not one, and one that does not match the spec.
    bad = tmp_path / "bad.json.gz"
    bad.write_text("not gzip")
    _one_line_exit_2(["report", kumar, "--from-records", str(bad)], capsys, "bad.json.gz")
    good = tmp_path / "good.json.gz"  # records of the lee2024 spec as it is (synthetic runs)
    _, pos = claims()["lee2024"].controls()
    rec_io.save(good, {"lee2024": {"collected": "", "runs": [rec_io.encode(r) for r in pos]}})
    lee = ["report", str(PAPERS_DIR / "lee2024.yaml"), "--from-records", str(good),
           "--no-figures", "--out", str(tmp_path / "r.md")]
    from grokspec.cli.main import main

    assert main(lee) == 0 and "**reproduced**" in (tmp_path / "r.md").read_text()
    capsys.readouterr()
    _one_line_exit_2([*lee, "--set", "train.optimizer.lr=0.5"], capsys, "good.json.gz",
                     "papers.lee2024.runs[0].spec.train.optimizer.lr", "0.001", "0.5")


@pytest.mark.slow
def test_one_cheap_paper_end_to_end_at_its_setting_gives_the_committed_verdict(
    mlflow_uri: str, capsys: pytest.CaptureFixture
) -> None:
    """Issue 18: spec -> runs (3 seeds, the registered setting, ~3 CPU minutes) -> records ->
    verdict, in a fresh store; the same verdict the committed records decide (CPU runs are
    deterministic)."""
    from grokspec.cli.main import main

    spec = str(PAPERS_DIR / "carvalho2025.yaml")
    assert main(["report", spec, "--out", "rep/r.md", "--no-figures"]) == 0
    fresh = rec_io.load(Path("rep/r-records.json.gz"))["papers"]["carvalho2025"]["runs"]
    assert len(fresh) == 6 and all(r["status"] == "FINISHED" for r in fresh)
    ours = Path("rep/r.md").read_text()
    committed = ROOT / "docs" / "reproductions-records.json.gz"
    assert main(["report", spec, "--out", "rep/c.md", "--from-records", str(committed),
                 "--no-figures"]) == 0
    verdict = [line for line in ours.splitlines() if line.startswith("**Verdict")]
    assert verdict == [line for line in Path("rep/c.md").read_text().splitlines()
                       if line.startswith("**Verdict")]


@pytest.mark.slow
def test_empirical_negative_control_shuffled_labels_is_not_reproduced(
    mlflow_uri: str, capsys: pytest.CaptureFixture
) -> None:
    """Issue 18, empirical controls: the real spec and code with 95% of the training labels
    replaced by random classes (nothing left to generalise); the registered rule must not
    say reproduced (~3 CPU minutes)."""
    from grokspec.cli.main import main

    spec = str(PAPERS_DIR / "carvalho2025.yaml")
    assert main(["report", spec, "--out", "neg/r.md", "--no-figures",
                 "--set", "dataset.label_noise=0.95"]) == 0
    text = Path("neg/r.md").read_text()
    verdict = next(line for line in text.splitlines() if line.startswith("**Verdict"))
    assert "reproduced" in verdict and "**Verdict: reproduced" not in verdict, verdict
