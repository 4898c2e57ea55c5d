//! hoist: placeholder, being written.
