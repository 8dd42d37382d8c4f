//! markdrop's black-box tests, in one binary so they share one build. What every file shares is
//! in `support`; the emulator's own tests are under `emulator`.

mod bad_input;
mod batches;
mod browser;
mod cli;
mod commonmark_spec;
mod demo;
mod dropbox_client;
mod emulator;
mod failures;
mod gfm_spec;
mod linking;
mod migrate;
mod ownership;
mod queue;
mod render_properties;
mod settings;
mod soak;
mod spec_examples;
mod store;
mod support;
mod sync;
mod team_space;
mod web_edge;
mod webhook;
mod worker_processes;
