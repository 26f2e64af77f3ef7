# GPU suite (tests/gpu): JAX under vramspy. Modes:
#   basic - a matmul with JAX's default allocator (it preallocates most of the device)
#   train - jitted gradient steps with shapes that alternate, timed after warm-up ("step_ms X" on
#           stderr); the suite runs it with XLA_PYTHON_CLIENT_ALLOCATOR=platform, where every buffer
#           is a driver allocation
import sys
import time

import jax
import jax.numpy as jnp

mode = sys.argv[1] if len(sys.argv) > 1 else "basic"
print("platform:", jax.devices()[0].platform)
if mode == "basic":
    x = jnp.ones((2048, 2048), dtype=jnp.float32)
    print("sum:", float((x @ x).sum()))
else:
    @jax.jit
    def step(w, x):
        loss = lambda w: jnp.mean(jnp.square(jnp.tanh(x @ w) @ w.T))
        return w - 1e-3 * jax.grad(loss)(w)

    w = jax.random.normal(jax.random.PRNGKey(0), (1024, 1024)) * 0.01
    batch = lambda i: jax.random.normal(jax.random.PRNGKey(i), (256 + 128 * (i % 2), 1024))
    for i in range(4):
        w = step(w, batch(i)).block_until_ready()
    steps = 100
    t0 = time.perf_counter()
    for i in range(steps):
        w = step(w, batch(i))
    w.block_until_ready()
    print("step_ms %.3f" % ((time.perf_counter() - t0) * 1000 / steps), file=sys.stderr)
    print("finite:", bool(jnp.isfinite(w).all()))
