//! markdrop's black-box tests, in one binary so they share one build.

mod bad_input;
mod browser;
mod cli;
mod commonmark_spec;
mod demo;
mod dropbox_client;
mod emulator;
mod emulator_control;
mod emulator_folder;
mod emulator_strict;
mod failures;
mod gfm_spec;
mod linking;
mod ownership;
mod queue;
mod render_properties;
mod soak;
mod spec_examples;
mod store;
mod support;
mod sync;
mod sync_world;
mod team_space;
mod web_edge;
mod webhook;
mod worker_processes;
