//! Counterparts roclab plays: the reference AMC (also the mirror AMC).

pub mod amc;
pub mod annuaire;
pub mod gap;
pub mod lab;
