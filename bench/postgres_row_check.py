#!/usr/bin/env python3
"""What the database gallery's row check costs: the aggregate query that bounds names, paths, vector lengths
and the vector count before anything is fetched (facerec/stores/postgres/reading.py, _check_rows), against the whole
PostgresStore.load() it is part of, on one gallery in one run.

Needs an empty database it may fill (every facerec table in it is dropped first), e.g. a throwaway server:
`python tests/postgres_server.py` prints the URL of one.

    python bench/postgres_row_check.py --url postgresql://postgres@127.0.0.1:PORT/DB --vectors 200000
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from postgres_store import DIMENSION, fill  # noqa: E402

from facerec.stores import postgres  # noqa: E402
from facerec.stores.postgres import reading  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True, help="an empty database this may fill")
    parser.add_argument("--vectors", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    import psycopg
    with tempfile.TemporaryDirectory() as folder:
        fill(args.url, args.vectors, Path(folder))
    with postgres.PostgresStore(args.url) as store:
        loads = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            store.load()
            loads.append(time.perf_counter() - start)
    checks = []
    with psycopg.connect(args.url) as connection:
        for _ in range(args.repeat):
            start = time.perf_counter()
            reading._check_rows(connection, None, DIMENSION)
            checks.append(time.perf_counter() - start)
    print(f"{args.vectors:,} vectors, best of {args.repeat}: load() {min(loads):.2f} s, of which the row check "
          f"{min(checks):.3f} s ({min(checks) / min(loads):.0%})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
