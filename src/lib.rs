//! roclab: a conformity-test laboratory for ROC exchanges.
//!
//! Flow: pack + profile are loaded and validated (`pack`, `profile`), the engine drives the
//! system under test through the HTTPS client or the mirrors (`engine`, `net`, `mirror`),
//! checks turn exchanges into findings, and reports only read the resulting `outcome`.

pub mod defects;
pub mod engine;
pub mod error;
pub mod mirror;
pub mod net;
pub mod outcome;
pub mod pack;
pub mod pki;
pub mod profile;
pub mod report;
pub mod roc;
pub mod soap;
pub mod xml;
