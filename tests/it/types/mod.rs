//! Value codec properties: every supported type round-trips between
//! PostgreSQL's text and binary forms, and bad input is an error, never a panic.

mod common;
mod driver;
mod robustness;
mod roundtrip;
