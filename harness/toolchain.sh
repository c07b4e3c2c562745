# Sourced by the harness scripts: the one place that names the LLVM version.
# rustc 1.95 is built on LLVM 22, and CONFIG_RUST_INLINE_HELPERS (C helpers
# linked as bitcode into Rust objects) needs clang's LLVM major to match it.
# Both kernels (KLP_IMPL=rust and c) build with it, so comparisons stay like
# for like.
KLP_LLVM_VERSION=22
# bindgen runs on this libclang too, not whichever one clang-sys finds first.
export LIBCLANG_PATH=/usr/lib/llvm-$KLP_LLVM_VERSION/lib
export KLP_LLVM_VERSION
