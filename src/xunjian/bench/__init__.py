"""Benchmarks behind ``xunjian bench`` (see specs/benchmarks.md).

Each module measures one thing against a peer in the same run and returns a JSON-able dict.
Timings are ratios measured side by side; absolute times are reported with the machine.
May import anything in xunjian except service and cli.
"""
