//! hoist-layers: placeholder, being written.
