//! Shared test support: request checks against the published schemas, and an end-to-end world.
#![allow(dead_code)]

pub mod browser;
pub mod checks;
pub mod dnsmasq;
pub mod harness;
pub mod postgres;
pub mod proxy;
pub mod sink;
pub mod spec_check;
pub mod tls;
