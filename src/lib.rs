//! markdrop keeps an HTML sibling next to every Markdown file in a Dropbox.
//!
//! The binary (`src/main.rs`) only parses the command line and calls in here; everything a test
//! can exercise lives in this library.

pub mod account;
pub mod cli;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod demo;
pub mod dropbox;
pub mod emulator;
pub mod metrics;
pub mod render;
pub mod settings;
pub mod store;
pub mod sync;
pub mod task;
pub mod telemetry;
pub mod web;
pub mod worker;
