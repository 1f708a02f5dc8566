from __future__ import annotations

from collections.abc import Iterator

import pytest

from pipelines.storage import progress


@pytest.fixture(autouse=True)
def _fresh_progress_registry() -> Iterator[None]:
    """The progress registry is process-wide: each test starts and ends with it empty."""
    progress.clear()
    yield
    progress.clear()
