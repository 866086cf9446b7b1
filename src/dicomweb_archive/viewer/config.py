"""OHIF's ``app-config.js`` for the viewer ``dwa serve --viewer`` serves beside the archive.

The viewer and the DICOMweb service share one origin, so the data source's
roots are the service's path (``/dicomweb``) and no request needs CORS.  When
the archive holds HTJ2K alternates (``dwa transcode``), the progressive-loading
extension (``ohif-progressive.mjs``, served at :data:`PROGRESSIVE_URL`) is
listed and switched on, as ``deploy/README.md`` recommends.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources

import orjson

#: Where the viewer loads the progressive-loading extension from.
PROGRESSIVE_URL = "/dicomweb-archive-progressive.mjs"
#: The OHIF route (``/viewer?StudyInstanceUIDs=…``) the study browser opens.
VIEWER_ROUTE = "/viewer"


def progressive_extension() -> bytes:
    """The progressive-loading extension module's source."""
    return (resources.files(__package__) / "ohif-progressive.mjs").read_bytes()


def data_source(dicomweb_root: str, *, progressive: bool) -> dict[str, object]:
    """The DICOMweb data source's configuration (client-contract §9)."""
    source: dict[str, object] = {
        "qidoRoot": dicomweb_root,
        "wadoRoot": dicomweb_root,
        "qidoSupportsIncludeField": True,
        "imageRendering": "wadors",
        "enableStudyLazyLoad": True,
        "supportsWildcard": True,
        "supportsFuzzyMatching": False,
        # Unquoted: no CORS preflight per frame should the viewer move elsewhere.
        "omitQuotationForMultipartRequest": True,
        "bulkDataURI": {"enabled": True},
        # The small JPEG the server renders, not a whole frame per series.
        "thumbnailRendering": "thumbnail",
    }
    if progressive:
        source["progressiveLoading"] = True
    return source


def app_config(
    configuration: dict[str, object], extensions: Sequence[str] = ()
) -> dict[str, object]:
    """OHIF's ``window.config`` with one DICOMweb data source of ``configuration``.

    ``extensions`` are URLs of OHIF extensions as plain ES modules, which OHIF
    imports at start-up (``ohif-progressive.mjs`` is one).
    """
    return {
        "routerBasename": "/",
        "extensions": list(extensions),
        "modes": [],
        "showStudyList": True,
        "showWarningMessageForCrossOrigin": False,
        "showCPUFallbackMessage": False,
        "showLoadingIndicator": True,
        "strictZSpacingForVolumeViewport": True,
        "investigationalUseDialog": {"option": "never"},
        # No guided tour over the first image a person opens: the archive's
        # users come to read images (OHIF shows it once per browser otherwise).
        "customizationService": {"ohif.tours": {"$set": []}},
        "defaultDataSourceName": "archive",
        "dataSources": [
            {
                "namespace": "@ohif/extension-default.dataSourcesModule.dicomweb",
                "sourceName": "archive",
                "configuration": {
                    "friendlyName": "dicomweb-archive",
                    "name": "archive",
                    **configuration,
                },
            }
        ],
    }


def app_config_script(dicomweb_root: str, *, progressive: bool) -> bytes:
    """``app-config.js`` for this archive: the configuration as the script OHIF loads."""
    config = app_config(
        data_source(dicomweb_root, progressive=progressive),
        [PROGRESSIVE_URL] if progressive else [],
    )
    return b"window.config = " + orjson.dumps(config, option=orjson.OPT_INDENT_2) + b";\n"
