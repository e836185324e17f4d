"""The driver ``spark-submit`` runs: ``nkr audit --engine spark`` on the cluster's session.

spark-submit takes a Python file, not a module, so this is one, and prints its own path:

    PYSPARK_PYTHON=.venv/bin/python .venv/bin/spark-submit --master spark://host:7077 \\
        "$(.venv/bin/python -m nkr.audit.spark_main --path)" SOURCE --out DIR [options]

Its arguments are those of ``nkr audit`` (``--engine spark`` is implied). The master, memory
and other settings are spark-submit's own; the audit adds only its defaults for the ones it is
not given (see :mod:`nkr.audit._spark`).
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a file, Python puts this folder first on the path, where nkr's own _duckdb module
# would hide the duckdb package's extension of the same name.
if sys.path and sys.path[0] and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    del sys.path[0]

from nkr._cli import main as cli


def main(argv: list[str]) -> int:
    if argv == ["--path"]:
        sys.stdout.write(__file__ + "\n")
        return 0
    return cli(["audit", *argv, "--engine", "spark"])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
