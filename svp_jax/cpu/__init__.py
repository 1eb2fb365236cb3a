"""Speed-ups for runs on the CPU only; svp_jax.runtime decides which apply.

  conv         2-D convolutions and their gradients through oneDNN, as XLA
               FFI custom calls (C++ in csrc/conv.cc), about twice XLA:CPU's
               own rate.
  host_memory  keeps freed host memory in the process (glibc mallopt), so
               XLA:CPU steps reuse warm pages instead of faulting in new ones.

Nothing here is imported by the models or the training code: whoever builds
a model passes it the convolution svp_jax.runtime chose, and entry points
(main.py, the benchmarks) call svp_jax.runtime.configure() once. Importing
this package does nothing by itself.
"""
