"""A plain-lines agent for the gateway bench: each line it reads, `COUNT MIN_GAP MAX_GAP`, makes it
write COUNT lines `<n> <wall clock>`, MIN_GAP to MAX_GAP seconds apart (at random), each stamped
with `time.time()` the moment it is written, so a reader anywhere on the machine can tell how long
the line took to reach it."""

from __future__ import annotations

import random
import sys
import time


def main() -> None:
    for line in sys.stdin:
        try:
            count, low, high = line.split()
            gaps = (float(low), float(high))
            lines = int(count)
        except ValueError:
            print(f"expected COUNT MIN_GAP MAX_GAP, got {line.strip()!r}", flush=True)
            continue
        for n in range(lines):
            time.sleep(random.uniform(*gaps))
            print(f"{n} {time.time():.6f}", flush=True)


if __name__ == "__main__":
    main()
