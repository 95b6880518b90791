"""The Ray executor on a local Ray instance (the `ray` extra: pip install -e '.[ray]')."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from grokspec.sweep.expand import load_sweep
from grokspec.sweep.launch import run_sweep
from grokspec.sweep.ray_executor import RayExecutor
from tests.helpers import TINY_GROK

ray = pytest.importorskip(
    "ray", reason="Ray is not installed: pip install -e '.[ray]' (CI installs the extra)"
)


def test_ray_executor_runs_a_tiny_sweep_into_the_same_store(tmp_path: Path, client) -> None:  # noqa: ANN001
    quick = {**TINY_GROK, "train": {**TINY_GROK["train"], "steps": 100, "eval_every": 50},
             "analysis": {"metrics": []}}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({**quick, "sweep": {
        "grid": {"train.optimizer.weight_decay": [0.5, 1.0]},
        "variants": {"ok": {}, "broken": {"train": {"optimizer": {"kind": "sgd", "lr": 1.0e6}}}},
        "resources": {"cpus": 1},
    }}))
    executor = RayExecutor(init_kwargs={"num_cpus": 2, "object_store_memory": 80 * 1024**2})
    result = run_sweep(load_sweep(path), executor, echo=lambda m: None)
    assert not ray.is_initialized()  # the local instance it started is stopped again
    wd = "train.optimizer.weight_decay"
    statuses = {(r["variant"], r[wd]): r["status"] for r in result.table}
    assert statuses == {("ok", 0.5): "FINISHED", ("ok", 1.0): "FINISHED",
                        ("broken", 0.5): "FAILED", ("broken", 1.0): "FAILED"}
    exp_id = client.get_run(result.parent_run_id).info.experiment_id
    kids = client.search_runs([exp_id], f"tags.`mlflow.parentRunId` = '{result.parent_run_id}'")
    assert len(kids) == 4  # workers logged to the store the driver prepared
    finished = [k for k in kids if k.info.status == "FINISHED"]
    assert all("test/acc" in k.data.metrics for k in finished)
