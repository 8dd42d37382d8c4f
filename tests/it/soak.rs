//! The soak test: many accounts, continuous edits, faults and crashes (being written).
