"""Support code for tests and benchmarks that users can also run against a deployment.

:mod:`xunjian.testing.badinput` is the bad-input corpus: hostile and broken images, tracks,
manifests, file names and object keys, each with the stage that must refuse it and the
reason it must give (``xunjian synth bad-inputs OUT_DIR`` writes it; docs/bad-inputs.md).

May import anything in the package except ``xunjian.service`` and ``xunjian.cli``.
"""
