"""Tests of xunjian.datasets."""
