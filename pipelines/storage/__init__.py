"""Resolve a KServe ``storageUri`` to a local path: local, ``file://``, ``pvc://``, ``s3://``,
``http(s)://``; downloads cached once per node, archives unpacked safely.

Example::

    model_dir = download("s3://models/churn/v3", StorageSettings.from_env())
"""

from pipelines.storage.resolve import SUPPORTED_SCHEMES, StorageSettings, download

__all__ = ["SUPPORTED_SCHEMES", "StorageSettings", "download"]
