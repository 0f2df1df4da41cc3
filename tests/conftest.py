"""Every test sees 8 forced CPU devices (sharding tests build meshes over them).  XLA's CPU
backend compiles at its lowest optimisation level: the suite is compile-bound (about a third
faster this way) and the tests compare numbers computed under the same flags."""

import os
import shutil
import socket
import tempfile

from lprior.xla import FAST_COMPILE_FLAGS  # noqa: E402  (no JAX import)

os.environ.setdefault("XLA_FLAGS", f"--xla_force_host_platform_device_count=8 {FAST_COMPILE_FLAGS}")
# One persistent compilation cache per test session, shared by the xdist workers and the
# launchers they start: many tests compile the same programs (a launcher run again to test
# resuming, a notebook and the tests of its module), and CI pays each compile once.
_session = os.environ.get("PYTEST_XDIST_TESTRUNUID") or f"pid{os.getpid()}"
_CACHE = os.path.join(tempfile.gettempdir(), f"lprior-jax-cache-{_session}")
_OWN_CACHE = "JAX_COMPILATION_CACHE_DIR" not in os.environ
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", _CACHE)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.2")

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_num_cpu_devices", 8)


@pytest.fixture
def x64():
  """Run a test in float64, restoring the previous setting afterwards."""
  old = jax.config.jax_enable_x64
  jax.config.update("jax_enable_x64", True)
  yield
  jax.config.update("jax_enable_x64", old)


@pytest.fixture
def free_port() -> int:
  """A free TCP port on 127.0.0.1 (for a jax.distributed coordinator)."""
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def pytest_sessionfinish(session, exitstatus):
  """The session's compilation cache goes with it (removed by the controller, not a worker)."""
  if _OWN_CACHE and "PYTEST_XDIST_WORKER" not in os.environ:
    shutil.rmtree(_CACHE, ignore_errors=True)
