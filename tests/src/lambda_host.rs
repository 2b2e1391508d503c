//! A Lambda host on loopback: the Runtime API (`2018-06-01`) emulator and a launcher that runs
//! a function's bootstrap binary under it, as Lambda would. The bench times and measures the
//! release binaries with it; the tests run the debug binaries black-box.

pub mod http;
pub mod launch;
pub mod runtime_api;
