"""CPU benchmark of dropkit vs torch: prints a markdown table and writes JSON.

Usage: python benchmarks/bench_cpu.py [--quick] [--out benchmarks/results/cpu.json]
"""

import argparse
import sys
from pathlib import Path

from dropkit.lab import bench


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for a smoke run")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/cpu.json"))
    args = parser.parse_args()
    result = bench.run(quick=args.quick, progress=lambda msg: print(msg, file=sys.stderr, flush=True))
    bench.save(result, args.out)
    print(bench.format_table(result))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
