"""The pipeline stages: upload, ingest (metadata), detect, georef, fuse, publish, verify.

May import core, storage, models, errors and settings; never service or cli.
"""
