//! Shared support for the integration tests.

pub mod spec_check;
