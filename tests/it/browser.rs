//! A real headless Chromium drives the product as a person would (being written).
