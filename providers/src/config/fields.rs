//! Config field types that carry their own check.
//!
//! They parse any value of their raw type and report a bad one through
//! [`Check`] instead of failing the parse: serde stops at the first error,
//! and a broken config must list every problem at once. Validation runs
//! every field's check (`Problems::check`), so the rule and its message live
//! here, once.

use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// A field that can say what is wrong with its value.
pub trait Check {
    /// Why the value is unusable, as a message after the key.
    fn problem(&self) -> Option<String>;
}

impl<T: Check> Check for Option<T> {
    fn problem(&self) -> Option<String> {
        self.as_ref().and_then(Check::problem)
    }
}

/// A count that must be at least 1 (`max_workers`, `heartbeat_misses`…).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(transparent)]
pub struct AtLeastOne(u32);

impl AtLeastOne {
    /// Any value; a zero is reported by [`Check`].
    pub const fn new(n: u32) -> Self {
        Self(n)
    }

    pub const fn get(self) -> u32 {
        self.0
    }
}

impl Check for AtLeastOne {
    fn problem(&self) -> Option<String> {
        (self.0 < 1).then(|| format!("must be at least 1 (got {})", self.0))
    }
}

impl From<u32> for AtLeastOne {
    fn from(n: u32) -> Self {
        Self(n)
    }
}

impl PartialEq<u32> for AtLeastOne {
    fn eq(&self, other: &u32) -> bool {
        self.0 == *other
    }
}

impl fmt::Display for AtLeastOne {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A duration that must be greater than zero, written like `"30s"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Positive(Duration);

impl Positive {
    /// Any value; zero is reported by [`Check`].
    pub const fn new(d: Duration) -> Self {
        Self(d)
    }

    pub const fn secs(s: u64) -> Self {
        Self(Duration::from_secs(s))
    }

    pub const fn get(self) -> Duration {
        self.0
    }
}

impl<'de> Deserialize<'de> for Positive {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        humantime_serde::deserialize(d).map(Self)
    }
}

impl Check for Positive {
    fn problem(&self) -> Option<String> {
        self.0
            .is_zero()
            .then(|| "must be greater than zero".to_owned())
    }
}

impl From<Duration> for Positive {
    fn from(d: Duration) -> Self {
        Self(d)
    }
}

impl PartialEq<Duration> for Positive {
    fn eq(&self, other: &Duration) -> bool {
        self.0 == *other
    }
}

/// An `http://` or `https://` URL.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
#[serde(transparent)]
pub struct HttpUrl(String);

impl HttpUrl {
    pub fn new(url: impl Into<String>) -> Self {
        Self(url.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for HttpUrl {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl Check for HttpUrl {
    fn problem(&self) -> Option<String> {
        let ok = self.0.starts_with("http://") || self.0.starts_with("https://");
        (!ok).then(|| format!("must start with http:// or https:// (got {:?})", self.0))
    }
}

impl fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which AWS resource an [`AwsId`] names: fixes its prefix.
pub trait AwsIdKind {
    const PREFIX: &'static str;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ami;
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Subnet;
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SecurityGroup;
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LaunchTemplateId;

impl AwsIdKind for Ami {
    const PREFIX: &'static str = "ami-";
}
impl AwsIdKind for Subnet {
    const PREFIX: &'static str = "subnet-";
}
impl AwsIdKind for SecurityGroup {
    const PREFIX: &'static str = "sg-";
}
impl AwsIdKind for LaunchTemplateId {
    const PREFIX: &'static str = "lt-";
}

/// An AWS resource id such as `ami-0abc`, `subnet-1`, `sg-1`, `lt-1`.
pub struct AwsId<K>(String, PhantomData<K>);

pub type AmiId = AwsId<Ami>;
pub type SubnetId = AwsId<Subnet>;
pub type SecurityGroupId = AwsId<SecurityGroup>;
pub type TemplateId = AwsId<LaunchTemplateId>;

impl<K> AwsId<K> {
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into(), PhantomData)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<K: AwsIdKind> Check for AwsId<K> {
    fn problem(&self) -> Option<String> {
        let prefix = K::PREFIX;
        let ok = self.0.len() > prefix.len() && self.0.starts_with(prefix);
        (!ok).then(|| format!("must be an id starting with {prefix:?} (got {:?})", self.0))
    }
}

impl<'de, K> Deserialize<'de> for AwsId<K> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Self::new)
    }
}

// By hand: derives would demand the marker types implement them too.
impl<K> Clone for AwsId<K> {
    fn clone(&self) -> Self {
        Self::new(self.0.clone())
    }
}
impl<K> PartialEq for AwsId<K> {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}
impl<K> Eq for AwsId<K> {}
impl<K> fmt::Debug for AwsId<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}
impl<K> fmt::Display for AwsId<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_name_the_rule() {
        assert_eq!(
            AtLeastOne::new(0).problem().as_deref(),
            Some("must be at least 1 (got 0)")
        );
        assert_eq!(AtLeastOne::new(1).problem(), None);
        assert_eq!(
            Positive::secs(0).problem().as_deref(),
            Some("must be greater than zero")
        );
        assert_eq!(
            HttpUrl::new("grpc://x").problem().as_deref(),
            Some("must start with http:// or https:// (got \"grpc://x\")")
        );
        assert_eq!(HttpUrl::new("https://x").problem(), None);
        assert_eq!(
            AmiId::new("ami-").problem().as_deref(),
            Some("must be an id starting with \"ami-\" (got \"ami-\")")
        );
        assert_eq!(SubnetId::new("subnet-1").problem(), None);
        assert_eq!(None::<Positive>.problem(), None);
    }

    #[test]
    fn bad_values_still_parse() {
        #[derive(Deserialize)]
        struct T {
            n: AtLeastOne,
            d: Positive,
            id: SecurityGroupId,
        }
        let t: T = toml::from_str("n = 0\nd = \"0s\"\nid = \"x\"").expect("parses");
        assert!(t.n.problem().is_some() && t.d.problem().is_some() && t.id.problem().is_some());
    }
}
