"""STOW-RS: the path of a ``POST /studies`` request, one module per step.

1. :mod:`.service` (:func:`~.service.store_instances`): checks the request
   (bearer token, Content-Type, declared length) and runs the steps below.
2. :mod:`.body`: the body read as it arrives, each part spooled to a file
   (:mod:`.multipart_parser` splits ``multipart/related``).
3. :mod:`.parts`: each part stored through the converter on its own, so one
   bad part fails alone with its FailureReason; the touched studies refreshed.
4. :mod:`.response`: the Store Instances Response Module (200, 202 or 409).
"""
