"""What a newcomer sees in the MLflow UI after a cross-model sweep, read back from a real
store through the run store (grokspec.tracking.store): run names, the parent's comparison,
the dataset input, clean params, the printed chart-view URL, a focused metric set."""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
import yaml

from grokspec.cli.main import main
from grokspec.metrics import names
from grokspec.tracking import tags
from grokspec.tracking.focus import focus
from grokspec.tracking.naming import chart_view_url, child_run_name
from grokspec.tracking.store import RunStore

#: Two learners on one concealed parity (40 bits: a GP with ARD has 40 lengthscales).
SPEC = {
    "name": "ui-parity",
    "seed": 0,
    "dataset": {"kind": "parity", "n_bits": 40, "k": 3, "n_examples": 240, "train_size": 120,
                "encoding": "pm1"},
    "train": {"steps": 20, "eval_every": 10, "batch_size": "full",
              "optimizer": {"kind": "adam", "lr": 0.05, "weight_decay": 0.0}},
    "tracking": {"experiment": "ui"},
    "sweep": {"variants": {
        "mlp": {"learner": {"kind": "mlp", "depth": 1, "width": 64}},
        "gp": {"learner": {"kind": "gp", "kernel": "rbf", "ard": True,
                           "inducing_points": 60, "predictive_samples": 8}},
    }},
}
#: The metric keys of one GP run: the uniform five, gp/{objective,outputscale}, the
#: lengthscale summary, early warning, the grok/* summary. 40 lengthscale keys would exceed it.
GP_KEY_LIMIT = 40


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory, _template_db: Path) -> dict:
    """One real store for the module: the sweep run once through the CLI."""
    folder = tmp_path_factory.mktemp("ui-store")
    shutil.copy(_template_db, folder / "mlflow.db")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    data = json.loads(json.dumps(SPEC))
    data["tracking"]["uri"] = uri
    path = folder / "ui.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = main(["sweep", str(path), "--device", "cpu"])
    assert rc == 0, out.getvalue()
    store = RunStore(uri)
    exp_id = store.require_experiment("ui")
    parent = store.sweep_parents(exp_id)[0]
    return {"store": store, "exp_id": exp_id, "parent": parent, "out": out.getvalue(),
            "children": store.children(parent.info.run_id, exp_id), "uri": uri}


def test_children_are_named_after_their_variant(swept: dict) -> None:
    by_name = {r.info.run_name: r for r in swept["children"]}
    assert set(by_name) == {"mlp", "gp"}
    assert {n: r.data.tags[tags.LEARNER] for n, r in by_name.items()} == {"mlp": "mlp",
                                                                          "gp": "gp"}


def test_parent_carries_the_comparison(swept: dict) -> None:
    parent = swept["store"].run(swept["parent"].info.run_id)
    m = parent.data.metrics
    for child in swept["children"]:
        name, cm = child.info.run_name, child.data.metrics
        assert m[f"{name}/final_test_acc"] == pytest.approx(cm[names.TEST_ACC])
        if names.GROK_TRAIN_FIT_STEP in cm:
            assert m[f"{name}/fit_step"] == cm[names.GROK_TRAIN_FIT_STEP]
        else:  # never fitted: no made-up number on the parent
            assert f"{name}/fit_step" not in m
    note = parent.data.tags[tags.NOTE]
    assert "| run |" in note and "| mlp |" in note and "| gp |" in note
    assert "final_test_acc" in note


def test_every_run_has_its_split_as_dataset_input(swept: dict) -> None:
    digests = set()
    for child in swept["children"]:
        inputs = child.inputs.dataset_inputs
        assert len(inputs) == 1
        ds = inputs[0].dataset
        assert ds.name == "parity" and ds.digest == child.data.tags[tags.SPLIT]
        assert json.loads(ds.profile) == {"num_rows": 240, "train_rows": 120, "test_rows": 120}
        digests.add(ds.digest)
    assert len(digests) == 1  # the identical split for both learners


def test_params_have_no_paths_no_duplicated_tags_no_none(swept: dict) -> None:
    folder = swept["uri"].removeprefix("sqlite:///").rsplit("/", 1)[0]
    for child in swept["children"]:
        params = child.data.params
        assert "learner.kind" in params and "dataset.n_bits" in params
        assert not any(k.startswith(("tracking.uri", "tracking.tags")) for k in params)
        assert "None" not in params.values()
        assert not any(folder in v or v.startswith(("/", "sqlite:")) for v in params.values())


def test_printed_url_opens_the_parents_runs_in_the_chart_view(swept: dict) -> None:
    out = swept["out"]
    assert f"mlflow ui --backend-store-uri {swept['uri']}" in out
    url = re.search(r"chart view: (\S+)", out).group(1)
    parsed = urlparse(url)
    assert parsed.netloc == "127.0.0.1:5000"
    route, _, query = parsed.fragment.partition("?")
    assert route == f"/experiments/{swept['exp_id']}/runs"
    q = parse_qs(query)
    assert q["workflowType"] == ["machine_learning"] and q["compareRunsMode"] == ["CHART"]
    pid = swept["parent"].info.run_id
    assert q["viewStateShareKey"] == [f"grokspec-{pid}"]
    # The view the key names is stored on the experiment, as the UI's "share" stores one:
    # the parent's children, best test/acc first (not start time: children not nested under
    # a collapsed parent), every run shown, accuracy first on a log step axis, grok/* hidden.
    exp_tags = swept["store"].experiment_tags(swept["exp_id"])
    state = json.loads(exp_tags[f"mlflow.sharedViewState.grokspec-{pid}"])
    assert state["searchFilter"] == f"tags.`mlflow.parentRunId` = '{pid}'"
    assert (state["orderByKey"], state["orderByAsc"]) == ("metrics.`test/acc`", False)
    assert state["runsHiddenMode"] == "SHOW_ALL" and state["isAccordionReordered"]
    first = state["compareRunSections"][0]
    assert first["name"] == "accuracy" and first["display"] and first["columns"] == 2
    charts = {c["metricKey"]: c for c in state["compareRunCharts"]}
    assert charts["test/acc"]["xAxisScaleType"] == "log"
    assert charts["test/acc"]["metricSectionId"] == first["uuid"]
    assert charts["test/acc"]["runsCountToCompare"] >= len(swept["children"])
    grok = next(s for s in state["compareRunSections"] if s["name"] == "grok")
    assert grok["display"] is False
    assert "mlflow.sharedViewState.grokspec-all" in exp_tags
    assert exp_tags["mlflow.experimentKind"] == "custom_model_development"


def test_a_gp_run_logs_a_focused_metric_set(swept: dict) -> None:
    gp = next(r for r in swept["children"] if r.info.run_name == "gp")
    keys = set(gp.data.metrics)
    assert {"gp/lengthscale/min", "gp/lengthscale/median", "gp/lengthscale/max"} <= keys
    assert not any(re.fullmatch(r"gp/lengthscale/\d+", k) for k in keys)
    assert len(keys) <= GP_KEY_LIMIT, sorted(keys)
    # Every value is still in the run's history table.
    table = swept["store"].history_table(gp.info.run_id)
    assert "gp/lengthscale/39" in table[-1]


def test_focus_summarises_only_many_valued_families() -> None:
    metrics = {"train/acc": 1.0, "weights/l2_norm": 5.0, "weights/l2_norm/a": 1.0,
               "weights/l2_norm/b": 3.0, "weights/l2_norm/c": 2.0, "progress/feature_rank/x": 4}
    assert focus(metrics, "summary") == {
        "train/acc": 1.0, "weights/l2_norm": 5.0, "progress/feature_rank/x": 4,
        "weights/l2_norm/min": 1.0, "weights/l2_norm/median": 2.0, "weights/l2_norm/max": 3.0,
    }
    assert focus(metrics, "full") == metrics


def test_run_names_and_urls() -> None:
    values = {"train.optimizer.weight_decay": 0.3, "dataset.train_fraction": 0.5}
    assert child_run_name(None, values, 1) == "wd=0.3 frac=0.5 s1"
    assert child_run_name("transformer", {}, None) == "transformer"
    assert child_run_name(None, {}, None) == "run"
    url = chart_view_url("http://127.0.0.1:5000/", "3")
    assert url == ("http://127.0.0.1:5000/#/experiments/3/runs?"
                   "workflowType=machine_learning&compareRunsMode=CHART"
                   "&viewStateShareKey=grokspec-all")
