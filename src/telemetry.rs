//! The tracing subscriber: human-readable lines by default, one JSON object per line for log
//! pipelines. Logs go to stderr, so `markdrop render` can print its document on stdout.
//!
//! Nothing here filters secrets: they never reach a field in the first place, because the types
//! that hold them (`SecretString`) print as `[REDACTED]`.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, TelemetrySettings};

/// Installs the global subscriber. Call once, before anything logs.
pub fn init(settings: &TelemetrySettings) {
    // The filter was validated when the settings were read; fall back to `info` all the same
    // rather than panic in a logging path.
    let filter = EnvFilter::try_new(&settings.filter)
        .unwrap_or_else(|_| EnvFilter::new(crate::config::DEFAULT_LOG_FILTER));
    // Colours only for a person at a terminal: a log file or a platform's log drain would get
    // escape codes.
    let colours = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colours);
    // `try_init` fails only when a subscriber is already installed (a test harness, say);
    // the one already there keeps working.
    let _ = match settings.format {
        LogFormat::Pretty => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).try_init(),
    };
}

/// An error and its causes on one line (`webhook refused: the queue is unavailable: the store
/// is unavailable: connection refused`), for a log field. A cause that the error before it shows
/// already (redis-rs's I/O errors are their own source) is not repeated. Errors in markdrop
/// never carry secrets in their messages.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut shown = error.to_string();
    let mut text = shown.clone();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !shown.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        shown = cause_text;
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chain_shows_each_cause_once() {
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let error = anyhow::Error::new(refused).context("cannot connect").context("no store");
        assert_eq!(error_chain(error.as_ref()), "no store: cannot connect: refused");
        // An error whose message includes its source's, as redis-rs's I/O errors do.
        let wrapped = anyhow::anyhow!("refused").context("refused");
        assert_eq!(error_chain(wrapped.as_ref()), "refused");
    }
}
