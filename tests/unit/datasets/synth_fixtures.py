"""Shared helpers for the synthetic test range's tests (imported by test_synth_*.py)."""

from __future__ import annotations

from functools import cache

from xunjian.datasets.synth.world import World

SEED = 11


@cache
def world() -> World:
    """One world for the module's tests (generating one takes about half a second)."""
    return World.generate(SEED)
