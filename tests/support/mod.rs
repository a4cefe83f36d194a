//! Shared test support: request checks against the published schemas, and an end-to-end world.
#![allow(dead_code)]

pub mod harness;
pub mod spec_check;
