from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = REPO.parent / "shared" / "data"
UTKFACE = SHARED_DATA / "utkface"


@pytest.fixture(scope="session")
def utkface_root() -> Path:
    if not (UTKFACE / "labels.csv").exists():
        pytest.skip(f"real faces not found at {UTKFACE} (../shared/data beside the repo): "
                    "skipping the tests that need UTKFace")
    return UTKFACE
