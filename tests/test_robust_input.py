"""Hostile and absurd input (issue 12): one FILE:LINE:COL line, exit 2, no traceback, no run.

The corpus: YAML python tags, extends cycles through relative paths, unreadable files,
alias bombs; tag keys and tracking URIs MLflow refuses; sizes no machine holds; a subclass
weight the training size cannot express; artifact names that climb out of the run.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from grokspec.cli.main import main
from grokspec.spec import mlflow_rules as rules
from grokspec.spec.loading import SpecError, load_spec
from tests.helpers import TINY_GROK


def experiment(**sections: object):  # noqa: ANN201 - Experiment
    """TINY_GROK with whole sections replaced (not merged: another kind has other fields)."""
    from grokspec.spec.loading import validate_data

    return validate_data({**TINY_GROK, **sections})

GOOD = """\
name: ok
dataset: {kind: modular, op: x+y, p: 31, train_fraction: 0.5}
learner: {kind: mlp, width: 64}
train: {steps: 10, eval_every: 5}
"""


def write(folder: Path, text: str | bytes, name: str = "spec.yaml") -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def only_problem(path: Path, overrides: tuple[str, ...] = ()) -> str:
    with pytest.raises(SpecError) as info:
        load_spec(path, list(overrides))
    (problem,) = info.value.problems
    return str(problem)


def test_python_tag_is_a_located_error_and_runs_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    text = GOOD + f"description: !!python/object/apply:os.system ['touch {marker}']\n"
    msg = only_problem(write(tmp_path, text))
    assert msg.startswith(f"{tmp_path / 'spec.yaml'}:5:14: ") and "YAML tag not allowed" in msg
    assert not marker.exists()
    msg = only_problem(write(tmp_path, GOOD), ("name=!!python/name:os.system",))
    assert msg.startswith("--set name=") and "\n" not in msg


def test_extends_cycle_through_relative_paths(tmp_path: Path) -> None:
    a = write(tmp_path, "extends: ../d/b.yaml\nname: a\n", "d/a.yaml")
    write(tmp_path, "extends: ../d/a.yaml\nseed: 1\n", "d/b.yaml")
    msg = only_problem(a)
    assert "circular extends" in msg and ":1:1: extends:" in msg
    assert str((tmp_path / "d" / "a.yaml").resolve()) in msg


@pytest.mark.parametrize(
    ("content", "expect"),
    [
        (b"name: x\n\xff\xfe oops\n", "is not UTF-8 text"),
        ("name: x\na: &a [*a]\n", "refers to a value containing itself"),
        ("[" * 5000, "nested too deeply"),
        ("".join(f"l{i}: &l{i} [{', '.join([f'*l{i-1}'] * 9 if i else ['1'] * 9)}]\n"
                 for i in range(8)), "more than 100000 values"),
        ("", "the file is empty"),
        ("- a\n- b\n", "a spec must be a mapping"),
        (GOOD + "extends: [1, 2]\n", "must be a file path"),
    ],
    ids=["not-utf8", "recursive-alias", "deep-nesting", "alias-bomb", "empty", "list",
         "extends-not-a-path"],
)
def test_loader_errors_are_one_line(tmp_path: Path, content: str | bytes, expect: str) -> None:
    msg = only_problem(write(tmp_path, content))
    assert expect in msg and "\n" not in msg


def test_folder_as_spec(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "is a folder" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("override", "field", "expect"),
    [
        ('tracking.tags={"../../x": "1"}', "tracking.tags", "not a plain relative name"),
        ("tracking.tags={" + "k" * 300 + ": v}", "tracking.tags", "at most 250"),
        ('tracking.tags={"a*b": v}', "tracking.tags", "characters MLflow refuses"),
        ("tracking.uri=file:///tmp/runs", "tracking.uri", "sqlite:////tmp/runs/mlflow.db"),
        ("tracking.uri=./mlruns", "tracking.uri", "is a folder path"),
        ("tracking.uri=ftp://host", "tracking.uri", "unknown tracking URI scheme"),
        ("learner.width=1000000000", "learner.width", "GiB of memory"),
        ("dataset.spurious_dims={count: 100000}", "dataset.spurious_dims.count", "GiB"),
        ("train.batch_size=100000", "train.batch_size", "larger than the 480 training"),
    ],
)
def test_refused_before_any_run(
    tmp_path: Path, override: str, field: str, expect: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GROKSPEC_MEMORY_LIMIT_GB", "2")  # the same verdict on any machine
    msg = only_problem(write(tmp_path, GOOD), (override,))
    assert msg.startswith(f"--set {override.split('=')[0]}") or ":" in msg
    assert f": {field}: " in msg and expect in msg, msg


def test_cli_run_refuses_bad_tag_without_creating_a_run(
    tmp_path: Path, client, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = write(tmp_path, GOOD + "tracking: {tags: {'../../x': '1'}}\n")
    assert main(["run", str(spec), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert f"{spec}:5:" in err and "Traceback" not in err
    assert client.search_runs([e.experiment_id for e in client.search_experiments()]) == []


def test_transformer_d_model_of_a_million(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GROKSPEC_MEMORY_LIMIT_GB", "64")
    with pytest.raises(SpecError, match=r"learner.d_model: this run needs about \d+"):
        experiment(learner={"kind": "transformer", "d_model": 1_000_000, "heads": 1})


def test_memory_estimate_is_a_lower_bound_not_a_false_alarm(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The shipped-size specs pass with a small limit (8 GiB): nothing plausible is refused."""
    monkeypatch.setenv("GROKSPEC_MEMORY_LIMIT_GB", "8")
    for path in sorted(Path("specs").glob("*.yaml")):
        text = path.read_text()
        if "sweep:" in text:
            continue
        load_spec(path)


@pytest.mark.parametrize(
    ("sampling", "train_size", "expect"),
    [([0.99, 0.01], 4, "weight 0.01 (0.01 of its class) but gets 0 of the class's 2"),
     ([1e-12, 1], 400, "gets 0 of the class's 200 training examples")],
)
def test_subclass_weight_rounding_to_zero(sampling: list, train_size: int, expect: str) -> None:
    with pytest.raises(SpecError) as info:
        experiment(dataset={"kind": "subclass", "classes": 2, "subclasses": 2, "dim": 8,
                            "train_size": train_size, "sampling": sampling})
    assert "dataset.sampling" in str(info.value) and expect in str(info.value)


def test_subclass_zero_weight_still_means_removed() -> None:
    exp = experiment(dataset={"kind": "subclass", "classes": 2, "subclasses": 2, "dim": 8,
                              "train_size": 40, "sampling": [1, 0]})
    assert exp.dataset.train_counts() == [[20, 0], [20, 0]]


KEYS = ["a", "grokspec.x", "a/b", "a b:c-d_e.f", "../../x", "/abs", "a//b", "a/", "./a",
        "a/../b", ".", "..", "a*b", "é", "k" * 250, "k" * 251, "tab\there", "a\nb"]


@pytest.mark.parametrize("key", KEYS)
def test_tag_rules_agree_with_mlflow(key: str) -> None:
    """Our copy of MLflow's tag-key rule says what MLflow's own validator says."""
    from mlflow.exceptions import MlflowException
    from mlflow.utils.validation import _validate_tag

    try:
        _validate_tag(key, "v")
        mlflow_ok = True
    except MlflowException:
        mlflow_ok = False
    assert (rules.tag_key_problem(key) is None) == mlflow_ok


@pytest.mark.parametrize("name", ["../escape.txt", "/abs.txt", "a/../../b.txt"])
def test_artifact_names_never_leave_the_run(client, name: str) -> None:
    from grokspec.tracking.tracker import Tracker

    t = Tracker(client.tracking_uri, "tests", "names")
    with pytest.raises(ValueError, match="relative path without"):
        t.log_files({name: b"x"})
    t.end()


def test_odd_names_write_inside_the_artifact_root(tmp_path: Path, client) -> None:
    """Names with '/' and '..' (spec, run, experiment) end up as data, never as paths."""
    from grokspec.tracking.tracker import Tracker

    t = Tracker(client.tracking_uri, "../../exp/..", "../../run/..", tags={"a/b": "1"})
    t.log_text("hello", "notes/hello.txt")
    t.end()
    root = tmp_path / "mlartifacts"
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert all(p.is_relative_to(tmp_path) for p in written)
    assert [p.name for p in root.rglob("hello.txt")] == ["hello.txt"]


def test_a_run_that_fails_after_it_exists_is_closed_failed(
    client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """log_params raising (and closing raising) end the run FAILED with the reason, never
    RUNNING."""
    import grokspec.run
    from grokspec.run import run_experiment
    from grokspec.tracking.tracker import Tracker

    quick = experiment(train={**TINY_GROK["train"], "steps": 20, "eval_every": 10},
                       analysis={"metrics": []})

    def refuse(self: Tracker, params: dict) -> None:
        raise RuntimeError("the store refused a param")

    with monkeypatch.context() as m:
        m.setattr(Tracker, "log_params", refuse)
        with pytest.raises(RuntimeError, match="refused"):
            run_experiment(quick, device="cpu")

    def broken_summary(*args: object) -> None:
        raise ValueError("summary exploded")

    monkeypatch.setattr(grokspec.run, "summarize", broken_summary)
    with pytest.raises(ValueError, match="exploded"):
        run_experiment(quick, device="cpu")
    runs = client.search_runs([client.get_experiment_by_name("tests").experiment_id],
                              order_by=["attributes.start_time ASC"])
    assert [r.info.status for r in runs] == ["FAILED", "FAILED"]
    reasons = [r.data.tags["grokspec.failure_reason"] for r in runs]
    assert "refused a param (logging the spec)" in reasons[0]
    assert "summary exploded (closing the run after step 20)" in reasons[1]


# Issue 21 item 5 and issue 20 item 5: numbers torch cannot hold, and one line per mistake.
@pytest.mark.parametrize(("value", "expect"), [
    ("1e300", "beyond float32's range"),  # YAML 1.1 reads 1e300 as text; pydantic makes it a float
    ("1.0e39", "beyond float32's range"), (".inf", "not a finite number"),
    (".nan", "not a finite number"),
])
def test_numbers_torch_cannot_hold_are_located_errors(tmp_path: Path, value: str,
                                                      expect: str) -> None:
    path = write(tmp_path, GOOD.replace("train: {", f"train: {{optimizer: {{lr: {value}}}, "))
    with pytest.raises(SpecError) as info:
        load_spec(path)
    [problem] = info.value.problems
    assert problem.path == "train.optimizer.lr" and expect in problem.message
    assert str(problem.where).startswith(f"{path}:4:")


def test_a_plain_union_gives_one_line_in_the_users_words(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("eval_every: 5}", "eval_every: 5, batch_size: fulll}"))
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert [str(p) for p in info.value.problems] == [
        f"{path}:4:35: train.batch_size: an integer or 'full' (got 'fulll')"]


def test_a_typo_in_a_set_names_the_set(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    with pytest.raises(SpecError) as info:
        load_spec(path, ["train.optimiser.lr=0.1"])
    [problem] = info.value.problems
    assert str(problem.where) == "--set train.optimiser.lr=0.1"
    assert "did you mean 'optimizer'" in problem.message


_PEAK = """
import resource, sys, torch
torch.set_num_threads(1)
from grokspec.spec.loading import load_spec
from grokspec.spec.limits import estimate_bytes
from grokspec.training.loop import fit
exp = load_spec(sys.argv[1], sys.argv[2:])
data = exp.dataset.build(exp.seed)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
fit(exp, dataset=data, measures=False)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(estimate_bytes(exp) / (peak - base))
"""


@pytest.mark.slow  # peak RSS of a subprocess: 1.1x alone, 3.5x once in a loaded full run
@pytest.mark.parametrize("over", [
    ["dataset.spurious_dims={count: 30}"],  # 1-layer, full batch: the evaluation chunk peaks
    ["dataset.spurious_dims={count: 20}", "learner.layers=2", "train.batch_size=512"],
])
def test_memory_estimate_is_within_2x_of_the_measured_peak(over: list[str]) -> None:
    """Issue 21 item 6: what the validation estimate says a transformer run needs, against
    the peak resident memory a real run (2 steps, evaluations included) adds."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    out = subprocess.run(
        [sys.executable, "-c", _PEAK, str(root / "specs" / "modadd_transformer.yaml"),
         "train.steps=2", "train.eval_every=1", *over],
        capture_output=True, text=True, timeout=300, check=True)
    ratio = float(out.stdout.strip().splitlines()[-1])
    assert 0.5 <= ratio <= 2.0, ratio


@pytest.mark.parametrize(("analysis", "dataset"), [
    ({"metrics": ["weight_norm"], "key_frequencies_at": "final"}, None),
    ({"metrics": ["fourier"], "key_frequencies_at": "each_evaluation"},
     {"kind": "modular", "op": "x*y", "p": 31, "train_fraction": 0.5}),
])
def test_key_frequencies_at_where_it_does_nothing_is_rejected(
    tmp_path: Path, analysis: dict, dataset: dict | None
) -> None:
    """No field silently ignored: key_frequencies_at only matters where the fourier measure
    computes the restricted/excluded losses (x+y, x-y)."""
    text = GOOD + f"analysis: {analysis}\n"
    if dataset is not None:
        text = text.replace("{kind: modular, op: x+y, p: 31, train_fraction: 0.5}", str(dataset))
    with pytest.raises(SpecError) as info:
        load_spec(write(tmp_path, text))
    assert [p.path for p in info.value.problems] == ["analysis.key_frequencies_at"]
    load_spec(write(tmp_path, GOOD + "analysis: {metrics: [fourier], key_frequencies_at: "
                    "each_evaluation}\n"))  # applies on x+y: accepted
