//! netsnap analyzer library.
