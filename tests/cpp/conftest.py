import pytest

from .cpp_runner import CppTools, build_cpp


@pytest.fixture(scope="session")
def cpp_tools() -> CppTools:
    """The C++ tools, built once per session (per xdist worker, serialised by a file lock)."""
    return build_cpp()
