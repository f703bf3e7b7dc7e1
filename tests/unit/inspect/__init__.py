"""Tests of xunjian.inspect: photo metadata, vehicle tracks, video sampling."""
