"""Tests of xunjian.storage."""
