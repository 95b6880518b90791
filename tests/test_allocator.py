"""The CPU allocator setting (grokspec/training/allocator.py) stops the page faults of
MiB-sized tensors freed and allocated again, as every training step does."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

PROBE = """
import resource, sys, torch
if sys.argv[1] == "keep":
    from grokspec.training.allocator import keep_freed_memory
    assert keep_freed_memory()
w = torch.randn(256, 1024)


def step():  # a small MLP's forward and backward: 1-4 MiB tensors allocated and freed
    x = torch.randn(1024, 256)
    h = (x @ w).relu()
    g = torch.ones_like(h) * (h > 0)
    return float((x.T @ g).sum())


for _ in range(5):
    step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(60):
    step()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def faults(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True,
                         check=True)
    return int(out.stdout.split()[-1])


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                    reason="glibc's mallopt")
def test_freed_tensors_are_reused_without_page_faults() -> None:
    default, kept = faults("default"), faults("keep")
    # negative control: glibc's defaults hand blocks back and fault them in again (1024 pages
    # of 4 KiB per MiB-sized tensor; fewer with transparent huge pages)
    assert default > 60 * 200, default
    assert kept * 10 < default, (kept, default)
