//! What the subcommands do once `main` has parsed their arguments and read the settings.

use std::io::{self, Read, Write};
use std::path::Path;

use anyhow::Context;

use crate::render;

/// `markdrop render [FILE]`: prints the document the worker would upload for FILE (or stdin).
pub fn render_to_stdout(file: Option<&Path>) -> anyhow::Result<()> {
    let (markdown, stem) = match file {
        Some(path) => {
            let markdown =
                std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            let stem = path.file_stem().map(|stem| stem.to_string_lossy().into_owned());
            (markdown, stem.unwrap_or_default())
        }
        None => {
            let mut markdown = Vec::new();
            io::stdin().read_to_end(&mut markdown).context("cannot read standard input")?;
            (markdown, String::new())
        }
    };
    let document = render::render(&markdown, &stem);
    let mut stdout = io::stdout().lock();
    match stdout.write_all(document.as_bytes()).and_then(|()| stdout.flush()) {
        // `markdrop render notes.md | head` closes the pipe early; that is not a failure.
        Err(error) if error.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        result => result.context("cannot write to standard output"),
    }
}
