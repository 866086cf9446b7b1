"""Parse: P10 bytes in, DICOM JSON and frames out."""

from __future__ import annotations

import logging
import warnings


def quiet_pydicom() -> None:
    """Silence pydicom's reports of every oddity it tolerates: a run reports per input.

    Here, not in a module that imports pydicom, so the ``dwa`` command starts fast.
    """
    warnings.filterwarnings("ignore", module="pydicom")
    logging.getLogger("pydicom").setLevel(logging.ERROR)
