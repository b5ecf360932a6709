"""Giving freed memory back to the system (issue 11: operator RSS at scale).

A list of 10,000 sessions, or a burst of them, leaves the C allocator holding the memory its
responses and decoded events took; glibc keeps most of it after Python frees it, and the RSS stays
at that high-water mark for good. `malloc_trim` hands what is free back. Without glibc (musl,
macOS) there is nothing to do.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
from collections.abc import Callable

logger = logging.getLogger(__name__)

TRIM_SECONDS = 60.0
"""How often free memory is handed back while the operator runs."""


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc.malloc_trim  # type: ignore[no-any-return]
    except (OSError, AttributeError):
        return None


_TRIM = _malloc_trim()


def trim() -> bool:
    """Hand free heap memory back to the system; False where the C library cannot."""
    if _TRIM is None:
        return False
    _TRIM(0)
    return True


async def trim_periodically(seconds: float = TRIM_SECONDS) -> None:
    while True:
        await asyncio.sleep(seconds)
        trim()
