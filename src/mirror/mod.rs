//! Counterparts roclab plays: the reference AMC (also the mirror AMC).

pub mod amc;
