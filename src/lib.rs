//! tether: keeps Railway, Vercel and Supabase converged to a git repository of YAML manifests.
#![forbid(unsafe_code)]

pub mod cli;
pub mod manifest;
pub mod observed;
pub mod plan;
pub mod secret;
pub mod store;
