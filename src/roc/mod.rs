//! ROC model business rules as pure functions over a neutral model: population and rights
//! lookup, amount computation (decimal, never floats), engagement registry.
//! (STUB: to be implemented.)

pub mod population;
