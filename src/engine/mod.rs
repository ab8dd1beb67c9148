//! Running scenarios. (STUB)
