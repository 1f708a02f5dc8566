"""Resolve a KServe ``storageUri`` to a local path: local, ``file://``, ``pvc://``, ``s3://``,
``gs://``, ``http(s)://``, ``hf://``; downloads cached once per node, archives unpacked safely,
progress logged and shown by :func:`pipelines.storage.progress.current`.

Example::

    model_dir = download("s3://models/churn/v3", StorageSettings.from_env())
"""

from pipelines.storage.resolve import SUPPORTED_SCHEMES, StorageSettings, download

__all__ = ["SUPPORTED_SCHEMES", "StorageSettings", "download"]
