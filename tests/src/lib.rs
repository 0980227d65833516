//! End-to-end helpers.

pub mod ec2_harness;
pub mod fake_imds;
pub mod fault_proxy;
pub mod moto;
