"""Pure domain: records, taxonomy, geometry, fusion rules, state machines.

May import only the standard library, numpy and ``xunjian.errors``. No I/O, no heavy imports.
"""
