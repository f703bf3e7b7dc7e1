"""Dataset formats: Pascal VOC (incl. RDD and UAV-PDD layouts), COCO, YOLO detect/segment.

Every importer returns a :class:`xunjian.datasets.records.Dataset` whose ``problems`` list
what was wrong with which file; an import never stops on one bad file.
"""

from xunjian.datasets.formats.coco import export_coco, import_coco
from xunjian.datasets.formats.detect_format import (
    FORMATS,
    Format,
    detect_format,
    export_dataset,
    import_dataset,
)
from xunjian.datasets.formats.voc import export_voc, import_voc, read_voc
from xunjian.datasets.formats.yolo import export_yolo, import_yolo, parse_label

__all__ = [
    "FORMATS",
    "Format",
    "detect_format",
    "export_coco",
    "export_dataset",
    "export_voc",
    "export_yolo",
    "import_coco",
    "import_dataset",
    "import_voc",
    "import_yolo",
    "parse_label",
    "read_voc",
]
