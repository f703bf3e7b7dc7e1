"""The closed loop with the city's case system (specs/cases.md, docs/cases.md).

Issues become cases exactly once through a transactional outbox; statuses come back by
polling (Open311) or signed callback (webhook); verified fixes and recurrences are told to
the case system; 评价 statistics are computed from the issues' histories.

* ``mapping``    class → Open311 service code / 数字城管 大类/小类 codes, status words (YAML)
* ``messages``   outbox payloads, case documents, zh-CN/en descriptions, evidence links
* ``outbox``     the IssueStore listener that enqueues messages; operator queries and replay
* ``sender``     claim, send, retry with backoff, dead letters; look before resending
* ``casebook``   the ``cases`` table and applying a case status to an issue
* ``connectors`` the connector interface and the file sink; ``open311``; ``webhook``
* ``loop``       :func:`open_case_loop` / :class:`CaseLoop`: sync once or run continuously
* ``stats``      :func:`evaluation_stats` (评价)
* ``testserver`` a strict GeoReport v2 server with fault injection, for tests and the bench

May import: ``xunjian.core``, ``xunjian.errors``, ``xunjian.settings``, ``xunjian.storage``,
httpx, PyYAML, SQLAlchemy, and lazily ``xunjian.inspect.evidence.evidence_key``. The pipeline
(``inspect``) never imports this package.
"""

from xunjian.cases.loop import CaseLoop, SyncReport, open_case_loop
from xunjian.cases.mapping import CaseMapping, load_mapping
from xunjian.cases.outbox import Outbox, PublishPolicy, install_outbox
from xunjian.cases.stats import evaluation_stats

__all__ = [
    "CaseLoop",
    "CaseMapping",
    "Outbox",
    "PublishPolicy",
    "SyncReport",
    "evaluation_stats",
    "install_outbox",
    "load_mapping",
    "open_case_loop",
]
