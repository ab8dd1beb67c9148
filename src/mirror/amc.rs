//! The embedded reference AMC. (STUB: to be implemented.)
