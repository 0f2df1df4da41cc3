"""XLA compiler options, passed per function as `jax.jit(f, compiler_options=...)`."""

# The cheapest CPU compile, for somewhat slower code: for smoke runs, CPU-sized experiments and
# tests, where compiling dominates (several-fold less compile time on 2 cores).
FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}
# the same options as XLA_FLAGS, for a whole process (set before JAX starts its backend)
FAST_COMPILE_FLAGS = " ".join(f"--{k}={str(v).lower()}" for k, v in FAST_COMPILE.items())


def compiler_options(fast_compile: bool) -> dict | None:
  return dict(FAST_COMPILE) if fast_compile else None
