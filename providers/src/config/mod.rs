//! What every provider's config section shares: where a problem is, the
//! field types that carry their own checks, the environment policy, and the
//! context validation and construction need.

mod context;
mod env;
mod fields;
mod price;
mod problem;

pub use context::{CacheVolume, Context};
pub use env::{check_env, is_env_name};
pub use fields::{
    Ami, AmiId, AtLeastOne, AwsId, AwsIdKind, Check, HttpUrl, LaunchTemplateId, Positive,
    SecurityGroup, SecurityGroupId, Subnet, SubnetId, TemplateId,
};
pub use price::check_price;
pub use problem::{Path, Problem, Problems, Scope, Segment};
