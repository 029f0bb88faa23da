//! Lab and end-to-end test helpers.
