"""Screenshots of the MLflow UI after a cross-model sweep, as a newcomer would open it.

Not part of the test run: it needs a browser (Debian: ``apt-get install -y chromium``) and a
minute or two of training. Steps:

1. run ``grokspec sweep specs/cross_model_modadd.yaml`` (shortened with ``--steps``, the MoE
   variant left out) into a fresh SQLite store in a temporary folder, and keep the
   ``chart view:`` URL it prints;
2. start ``mlflow ui`` on 127.0.0.1 for that store;
3. headless Chromium screenshots: ``landing.png`` (the experiment's page as MLflow opens it
   without the URL's query: the GenAI mode) and ``chart_view.png`` (the printed URL).

Usage: python bench/ui_screenshot.py [--out grokspec_out/ui] [--steps 1500] [--port 5057]
"""

from __future__ import annotations

import argparse
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def wait_for(url: str, seconds: float = 90.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer within {seconds:.0f} s")


def screenshot(browser: str, url: str, path: Path, wait_ms: int) -> None:
    subprocess.run(
        [browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--window-size=1600,1000", "--run-all-compositor-stages-before-draw",
         f"--virtual-time-budget={wait_ms}",
         f"--screenshot={path}", url],
        check=True, capture_output=True, timeout=180,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="grokspec_out/ui")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--port", type=int, default=5057)
    parser.add_argument("--wait-ms", type=int, default=25000,
                        help="virtual time the page gets to load and draw")
    args = parser.parse_args()
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        sys.exit("no chromium on PATH (Debian: apt-get install -y chromium)")
    with socket.socket() as s:
        if s.connect_ex(("127.0.0.1", args.port)) == 0:
            sys.exit(f"port {args.port} is in use: pass --port")
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        uri = f"sqlite:///{Path(tmp) / 'mlflow.db'}"
        sweep = [
            sys.executable, "-m", "grokspec.cli.main", "sweep",
            str(ROOT / "specs" / "cross_model_modadd.yaml"), "--device", "cpu",
            "--set", f"tracking.uri={uri}", "--set", f"train.steps={args.steps}",
            "--set", "sweep.variants={transformer: {learner: {kind: transformer, layers: 1, "
            "d_model: 64, heads: 4, d_mlp: 256}}, mlp: {learner: {kind: mlp, depth: 1, "
            "width: 256, activation: quadratic}}}",
        ]
        started = time.monotonic()
        done = subprocess.run(sweep, cwd=tmp, capture_output=True, text=True)
        print(f"sweep: exit {done.returncode} after {time.monotonic() - started:.0f} s")
        print(done.stdout)
        match = re.search(r"chart view: (\S+)", done.stdout)
        if done.returncode != 0 or match is None:
            sys.exit(done.stderr[-3000:])
        chart = match.group(1).replace("127.0.0.1:5000", f"127.0.0.1:{args.port}")
        landing = chart.split("/runs?")[0]
        ui = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri,
             "--host", "127.0.0.1", "--port", str(args.port)],
            cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            wait_for(f"http://127.0.0.1:{args.port}/health")
            for name, url in (("landing.png", landing), ("chart_view.png", chart)):
                screenshot(browser, url, out / name, args.wait_ms)
                print(f"{out / name}  <-  {url}")
        finally:
            ui.terminate()
            ui.wait(timeout=30)


if __name__ == "__main__":
    main()
