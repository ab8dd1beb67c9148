//! Reports. (STUB)
