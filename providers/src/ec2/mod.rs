//! Workers as EC2 instances: spot, on-demand, or spot falling back to
//! on-demand, tagged at launch so a restarted master finds them again.

mod client;
mod config;
pub mod contract;
mod errors;
mod launch;
mod pricing;
mod provider;
mod retry;
mod section;
mod settings;
mod tags;
mod userdata;
mod validate;

pub use config::{Ec2LaunchTemplate, Ec2PoolConfig};

pub use client::build as build_client;
pub use errors::{classify_code, CodeClass};
pub use launch::{next_step, NextStep};
pub use provider::Ec2Provider;
pub use settings::{
    Ec2Settings, LaunchTemplateRef, Market, Platform, RetrySettings, RootVolume, TypeStrategy,
    DEFAULT_FALLBACK_CODES,
};
pub use userdata::{placeholders, render_user_data, template, UserDataValues};
