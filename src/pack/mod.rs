//! Packs: the typed, validated model (`model`), strict loading with positions (`load`),
//! templates (`template`) and scenario selection (`select`).

pub mod load;
pub mod model;
pub mod select;
pub mod template;

pub use load::load;
pub use model::*;
