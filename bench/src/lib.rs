//! Switchboard's benchmark harness.
//!
//! - `bare`: the physical-limit reference, a broadcaster with no features.
//! - `loadgen`: the load generator, a separate process that drives any target over loopback.
//! - `bench/run.py`: the campaign runner that starts each server, runs the load generator
//!   against it in interleaved repetitions, and prints medians (see docs/BENCHMARKS.md).
