"""Detector backends, tiling, the model registry and the shipped default weights.

May import core, storage, errors and settings. torch, ultralytics, onnxruntime and cv2 are
imported inside the functions that need them, never at module import.
"""
