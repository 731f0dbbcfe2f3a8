"""CSV import of customers, orders and activity events: the management commands and the staff UI
(through a background Job) both call these."""

from .jobs import import_job_run, import_job_start
from .reader import ImportFileError
from .rows import IMPORT_KINDS
from .service import DEFAULT_CHUNK_SIZE, ImportResult, RejectedRow, import_csv, import_header_check

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "IMPORT_KINDS",
    "ImportFileError",
    "ImportResult",
    "RejectedRow",
    "import_csv",
    "import_header_check",
    "import_job_run",
    "import_job_start",
]
