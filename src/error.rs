//! (STUB)
