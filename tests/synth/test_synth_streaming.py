"""``nkr synth`` streams: its peak memory does not grow with the number of patients, and a run
that fails leaves nothing behind."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest

from nkr import _synth
from nkr._package import registry
from nkr._synth import Sink, synthesize

# One process (no workers), so that its own peak RSS is the whole run's.
PEAK = """
import resource, sys
from pathlib import Path
from nkr._package import registry
from nkr._synth import synthesize
package = registry().get("nkr-lumbal-radikulopati")
synthesize(package.synthesis, package.id, int(sys.argv[1]), Path(sys.argv[2]), workers=1)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def peak_kb(patients: int, out: Path) -> int:
    done = subprocess.run(
        [sys.executable, "-c", PEAK, str(patients), str(out)],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(done.stdout)


def test_peak_memory_does_not_grow_with_the_number_of_patients(tmp_path: Path) -> None:
    small = peak_kb(2_000, tmp_path / "small")
    large = peak_kb(50_000, tmp_path / "large")
    # 25 times the patients (about 150 MB of files) in the same memory, give or take.
    assert large < small * 1.15, (small, large)


class Failing:
    """A plan that fails after its first block of patients."""

    def __init__(self) -> None:
        self.plan = registry().get("nkr-lumbal-radikulopati").synthesis
        self.indicators = self.plan.indicators
        self.exclusions = self.plan.exclusions
        self.transaction_time = self.plan.transaction_time
        self.calls = 0

    def shared(self, sink: Sink) -> None:
        self.plan.shared(sink)

    def patients(self, rng: random.Random, first: int, count: int, sink: Sink) -> None:
        self.calls += 1
        if self.calls > 1:
            raise RuntimeError("the plan broke")
        self.plan.patients(rng, first, count, sink)


def test_a_run_that_fails_leaves_nothing_half_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_synth, "BLOCK_SIZE", 10)
    with pytest.raises(RuntimeError):
        synthesize(Failing(), "x", 100, tmp_path / "out", workers=1)
    assert list(tmp_path.iterdir()) == []
