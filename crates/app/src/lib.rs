//! The `marketops` program: configuration, startup, background jobs, the demo company and
//! the command line.

pub mod cli;
pub mod config;
pub mod demo;
pub mod history;
pub mod jobs;
pub mod startup;
