"""Every error that ``cam_core`` raises on purpose.

Each class names one kind of problem; messages name the input and the fix, so the CLI and the
dashboard can show ``str(error)`` to a person as it is.
"""

from __future__ import annotations

__all__ = [
    "AccessError",
    "AlreadyRunningError",
    "ArtifactError",
    "CamLensError",
    "DataSourceError",
    "DistributedError",
    "DownloadError",
    "FolderNotSharedError",
    "ImageRejectedError",
    "ImportModelError",
    "MethodError",
    "ModelFileError",
    "PreprocessingError",
    "ReviewStoreError",
    "TrainingError",
    "UrlRejectedError",
    "first_line",
]


def first_line(exc: BaseException, limit: int = 120) -> str:
    """What a library's exception says, fit for one line of ours: the first line of its
    message (at most ``limit`` characters), or its kind when it says nothing."""
    text = str(exc).strip()
    return text.splitlines()[0][:limit] if text else type(exc).__name__


class CamLensError(Exception):
    """Base class: a problem the user can fix, with a one-line message."""


class DataSourceError(CamLensError):
    """A dataset could not be found, read or labelled."""


class DownloadError(CamLensError):
    """A dataset or weights download failed (usually: no internet)."""


class ImageRejectedError(CamLensError):
    """Bytes that are not an acceptable image (wrong format, too large, corrupt)."""


class UrlRejectedError(CamLensError):
    """A URL that may not be fetched, or whose fetch failed."""


class ModelFileError(CamLensError):
    """A saved model folder that is missing, damaged, or from an unknown format."""


class ArtifactError(CamLensError):
    """An analysis artifact folder that is missing, damaged, or inconsistent."""


class AccessError(CamLensError):
    """A roles configuration that is not valid, or an action the user's role does not allow."""


class FolderNotSharedError(CamLensError):
    """A folder outside the folders a dashboard server shares (``CAM_LENS_ROOTS``)."""


class AlreadyRunningError(CamLensError):
    """Another training or analysis is writing the same folder right now."""


class MethodError(CamLensError):
    """An explanation method that does not exist or does not apply to this model or layer."""


class ImportModelError(CamLensError):
    """Weights from elsewhere that cannot be imported safely or do not fit the architecture."""


class ReviewStoreError(CamLensError):
    """The review database is damaged, locked for too long, or cannot be opened."""


class DistributedError(CamLensError):
    """A rank of a sharded (torchrun) analysis failed; nothing was written."""


class TrainingError(CamLensError):
    """Training cannot run as set up (e.g. several processes without accelerate)."""


class PreprocessingError(CamLensError):
    """A model whose preprocessing (size, normalisation) cannot be reproduced for a test."""
